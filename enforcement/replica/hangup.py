"""SIGHUP: what a terminal hang-up, or logrotate's `postrotate`, sends a long-running process.

Its default action ends the process, so every serving process handles it, in both modes. The
log goes to standard error (the terminal's, journald's or the container runtime's to rotate):
there is no file of ours to reopen. What a hang-up does is what a reload can safely do
without a restart: check for a newer index at once (the snapshot file in file mode; Redis's
current snapshot and the feeds' status when following Redis). The process keeps serving.

One handler per event loop dispatches to every part that registered (`on_hangup`): the server
registers for as long as it serves, so a hang-up during start-up or shutdown is harmless too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

_registered: list[tuple[Callable[[], None], str]] = []


def _dispatch() -> None:
    for callback, _ in list(_registered):
        callback()
    done = [what for _, what in _registered if what]
    log.info(
        "SIGHUP: still serving; logs go to standard error, no file to reopen%s",
        "".join(f"; {what}" for what in done),
    )


@contextlib.contextmanager
def on_hangup(callback: Callable[[], None], what: str = "") -> Iterator[None]:
    """Call `callback` on SIGHUP while inside; `what` it does goes to the log line. Needs a
    running loop in the main thread; elsewhere (a test's thread) it registers nothing."""
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGHUP, _dispatch)
    except (NotImplementedError, RuntimeError, ValueError):  # not Unix, not the main thread
        yield
        return
    entry = (callback, what)
    _registered.append(entry)
    try:
        yield
    finally:
        _registered.remove(entry)
        if not _registered:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGHUP)
