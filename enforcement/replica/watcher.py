"""Loading snapshots into the service: at start-up, on a file change, and on SIGHUP.

The watcher polls the `current.vidx` link (cheap `stat`), and on a change maps and verifies the
new file in a worker thread, binds it to the rules and swaps it in; requests in flight keep the
index they started with. A file that fails verification is refused, counted and logged; the
last good index keeps serving. At start-up a bad `current` falls back to the newest good file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from aiohttp import web

from ..config.settings import Settings
from ..core.live import IndexHolder, bind
from ..core.rules import Rules
from ..core.snapshot import SUFFIX, SnapshotError, open_snapshot
from .hangup import on_hangup

log = logging.getLogger(__name__)


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()  # follows the symlink: a new target is a new inode
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def load_into(holder: IndexHolder, rules: Rules, path: Path) -> bool:
    """Verify and activate the snapshot at `path`; False (and the old index kept) on failure."""
    try:
        index = open_snapshot(path)
    except (SnapshotError, OSError) as exc:
        holder.refuse(exc)
        log.error("snapshot refused, keeping the current index: %s", exc)
        return False
    target = path.resolve()
    holder.activate(bind(index, rules, target))
    log.info(
        "index activated: revision %d, %d permits, %d plates, from %s",
        index.meta.revision,
        index.permit_count,
        index.plate_count,
        target.name,
    )
    return True


def load_initial(holder: IndexHolder, rules: Rules, snapshot_dir: Path) -> bool:
    """At start-up: `current`, else the newest snapshot that verifies."""
    current = snapshot_dir / ("current" + SUFFIX)
    if not current.exists():
        holder.last_error = f"no snapshot in {snapshot_dir} yet: run `varco rebuild`"
        log.warning("%s; not ready until one is published", holder.last_error)
    elif load_into(holder, rules, current):
        return True
    candidates = sorted(snapshot_dir.glob("index-r*" + SUFFIX), key=os.path.getmtime, reverse=True)
    for path in candidates:
        if load_into(holder, rules, path):
            log.warning("serving fallback snapshot %s", path.name)
            return True
    return False


def snapshot_watcher(
    settings: Settings, rules: Rules, holder: IndexHolder
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx resource: load at start-up, then follow `current` until shutdown."""

    async def resource(app: web.Application) -> AsyncIterator[None]:
        current = settings.storage.current_snapshot
        seen = _identity(current)
        await asyncio.to_thread(load_initial, holder, rules, settings.storage.snapshot_dir)
        wake = asyncio.Event()

        async def follow() -> None:
            nonlocal seen
            while True:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(wake.wait(), settings.server.snapshot_poll_s)
                wake.clear()
                now = _identity(current)
                if now is not None and now != seen:
                    seen = now
                    await asyncio.to_thread(load_into, holder, rules, current)

        task = asyncio.create_task(follow(), name="snapshot-watcher")
        with on_hangup(wake.set, "the snapshot file checked now"):
            yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return resource
