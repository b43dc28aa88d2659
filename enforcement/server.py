"""Running the service: logging, the event loop (uvloop where available), signals."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from .app import create_app
from .config import Settings
from .rules import Rules

log = logging.getLogger("varco")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return,unused-ignore]


async def serve_forever(
    settings: Settings, rules: Rules, ready: Callable[[], None] | None = None
) -> None:
    app = create_app(settings, rules)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_port=True, backlog=1024)
    await site.start()
    log.info("listening on http://%s:%d", settings.host, settings.port)
    if ready is not None:
        ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()


def serve(settings: Settings, rules: Rules, ready: Callable[[], None] | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_forever(settings, rules, ready))
