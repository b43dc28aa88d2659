"""Running the service: Redis, the event loop (uvloop where available), workers, signals.

What is served comes from `make_app(settings, rules, redis_url)` (the composition's
`create_app` with its extensions). `serve` runs one process; `serve_workers` runs N worker
processes on one port
(SO_REUSEPORT: the kernel spreads connections), each mapping the same snapshot file, so the
index's pages are in memory once. The parent starts the embedded Redis when none is
configured, restarts a worker that dies, and stops everything on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..config.load import load_config
from ..config.settings import Settings, with_changes
from ..core.rules import Rules
from ..replica.redis_server import start_redis

log = logging.getLogger("varco")

# The application to serve, given the settings, the rules and the Redis URL to follow (None:
# no Redis). Passed to worker processes, so a module-level function (or a partial of one).
AppFactory = Callable[[Settings, Rules, str | None], web.Application]


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return,unused-ignore]


async def serve_forever(
    settings: Settings,
    rules: Rules,
    make_app: AppFactory,
    redis_url: str | None,
    ready: Callable[[], None] | None = None,
) -> None:
    app = make_app(settings, rules, redis_url)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(
        runner, settings.server.host, settings.server.port, reuse_port=True, backlog=1024
    )
    await site.start()
    freeze_startup_objects()
    log.info(
        "listening on http://%s:%d (pid %d)",
        settings.server.host,
        settings.server.port,
        os.getpid(),
    )
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


def freeze_startup_objects() -> None:
    """What start-up built (modules, classes, routes, the config and its rules, ~65,000
    objects) lives as long as the process: moved out of the garbage collector's sight, so
    that its full collections walk only what requests left behind. Called once the app has
    started, in the serving process only (a test process starts many apps)."""
    gc.freeze()


def serve(
    settings: Settings, rules: Rules, make_app: AppFactory, ready: Callable[[], None] | None = None
) -> None:
    """Serve in this process until SIGTERM or SIGINT."""
    redis_url, embedded = start_redis(settings)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve_forever(settings, rules, make_app, redis_url, ready))
    finally:
        if embedded is not None:
            embedded.stop()


def _worker(
    config_path: Path, env: dict[str, str], port: int, redis_url: str | None, make_app: AppFactory
) -> None:
    """A worker process: its own configuration load (nothing unpicklable crosses over)."""
    fmt = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)
    settings, rules = load_config(config_path, env)
    settings = with_changes(settings, server={"port": port})  # a --port given to the parent
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_forever(settings, rules, make_app, redis_url))


def serve_workers(
    settings: Settings, env: dict[str, str], workers: int, make_app: AppFactory
) -> None:
    """Run `workers` processes on one port until SIGTERM or SIGINT; restart any that die."""
    redis_url, embedded = start_redis(settings)
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn() -> multiprocessing.process.BaseProcess:
        args = (settings.config_path, env, settings.server.port, redis_url, make_app)
        p = ctx.Process(target=_worker, args=args, name="varco-worker", daemon=False)
        p.start()
        return p

    procs = [spawn() for _ in range(workers)]
    started = [time.monotonic()] * workers
    quick_deaths = [0] * workers  # a worker dying at start-up again and again backs off
    restart_at: list[float | None] = [None] * workers
    log.info("%d workers on http://%s:%d", workers, settings.server.host, settings.server.port)
    try:
        while not stopping:
            time.sleep(0.2)
            for i, p in enumerate(procs):
                if p.is_alive() or stopping:
                    continue
                now = time.monotonic()
                if restart_at[i] is None:
                    quick_deaths[i] = quick_deaths[i] + 1 if now - started[i] < 10 else 0
                    wait = min(2.0 ** (quick_deaths[i] - 1), 30.0) if quick_deaths[i] > 1 else 0
                    log.error(
                        "worker pid %s exited with %s; restarting it in %.0f s",
                        p.pid,
                        p.exitcode,
                        wait,
                    )
                    restart_at[i] = now + wait
                if now >= (restart_at[i] or 0):
                    procs[i], started[i], restart_at[i] = spawn(), now, None
    finally:
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)
        for p in procs:
            p.join(15)
            if p.is_alive():
                p.kill()
        if embedded is not None:
            embedded.stop()
