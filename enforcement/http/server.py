"""Running the service: Redis, the event loop (uvloop where available), signals; and each
worker of `serve --workers N` (whose parent is supervisor.py).

What is served comes from `make_app(settings, rules, redis_url)` (the composition's
`create_app` with its extensions), on connections bounded by connections.py. `serve` runs one
process. Workers share one port (SO_REUSEPORT: the kernel spreads connections), each mapping
the same snapshot file, so the index's pages are in memory once.

A port already in use is refused (PortInUse), never shared: SO_REUSEPORT would let a second
service, judging on another permit database, take half the traffic without a word. So one
process binds without it, and a set of workers first claims the port (ports.py).

A Redis whose memory policy would evict evidence is refused too (EvictingRedis, memory.py).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import resource
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..config.load import load_config
from ..config.settings import Settings, with_changes
from ..core.rules import Rules
from ..memory import check_at_startup
from ..replica.hangup import on_hangup
from ..replica.redis_server import start_redis
from .connections import GuardedRunner
from .ports import in_use
from .service import SERVICE
from .siblings import Siblings, answering

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


async def start_site(
    app: web.Application, settings: Settings, *, reuse_port: bool = False
) -> GuardedRunner:
    """`app` served on the settings' address with bounded connections; the runner, to
    clean up. `reuse_port` only for the workers of one `serve_workers`.

    A lone process binds before the app starts: a port in use is refused at once, before an
    index is loaded or anything of another service's (its Redis, its data directory) is
    touched."""
    host, port = settings.server.host, settings.server.port
    sock = None
    if not reuse_port:
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family, backlog=1024)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise in_use(host, port) from None
            raise
    runner = GuardedRunner(app, settings.server)
    try:
        await runner.setup()
        site: web.BaseSite = (
            web.SockSite(runner, sock)
            if sock is not None
            else web.TCPSite(runner, host, port, reuse_port=True, backlog=1024)
        )
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise in_use(host, port) from None
        raise
    except BaseException:
        if sock is not None:
            sock.close()
        raise
    return runner


async def serve_forever(
    settings: Settings,
    rules: Rules,
    make_app: AppFactory,
    redis_url: str | None,
    ready: Callable[[], None] | None = None,
    reuse_port: bool = False,
    siblings: Siblings | None = None,
) -> None:
    app = make_app(settings, rules, redis_url)
    if siblings is not None:  # one of several workers: /metrics is all of theirs
        service = app[SERVICE]
        service.siblings = siblings
        app.cleanup_ctx.append(answering(siblings, service.metrics))
    await serve_app(app, settings, ready, reuse_port)


async def serve_app(
    app: web.Application,
    settings: Settings,
    ready: Callable[[], None] | None = None,
    reuse_port: bool = False,
) -> None:
    """`app` on the settings' address until SIGTERM or SIGINT (benchmarks serve theirs so)."""
    with on_hangup(lambda: None):  # SIGHUP never ends a serving process (hangup.py)
        enough_descriptors(settings.server.max_connections)
        runner = await start_site(app, settings, reuse_port=reuse_port)
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


def enough_descriptors(max_connections: int) -> None:
    """Raise the soft limit on open files to the hard one where max_connections (and the
    files, Redis connections and listening socket beside them) would not fit: a process that
    runs out of descriptors refuses every camera, not only the excess."""
    need = max_connections + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = hard if hard == resource.RLIM_INFINITY else min(hard, max(need, soft))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < need:
        log.warning(
            "open-file limit %d is below server.max_connections + 256 = %d: raise it "
            "(ulimit -n, LimitNOFILE=) or lower max_connections",
            soft,
            need,
        )


def freeze_startup_objects() -> None:
    """What start-up built (modules, classes, routes, the config and its rules, ~65,000
    objects) lives as long as the process: moved out of the garbage collector's sight, so
    that its full collections walk only what requests left behind. Called once the app has
    started, in the serving process only (a test process starts many apps)."""
    gc.freeze()


def run_app(app: web.Application, settings: Settings) -> None:
    """`serve_app` on uvloop, in this process, until SIGTERM or SIGINT."""
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_app(app, settings))


def serve(
    settings: Settings, rules: Rules, make_app: AppFactory, ready: Callable[[], None] | None = None
) -> None:
    """Serve in this process until SIGTERM or SIGINT."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until serve_app handles it (hangup.py)
    redis_url, embedded = start_redis(settings)
    try:
        if redis_url is not None:
            check_at_startup(redis_url, settings.redis.max_memory)  # EvictingRedis
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve_forever(settings, rules, make_app, redis_url, ready))
    finally:
        if embedded is not None:
            embedded.stop()


def run_worker(
    config_path: Path,
    port: int,
    redis_url: str | None,
    make_app: AppFactory,
    siblings: Siblings,
) -> None:
    """A worker of `serve --workers N` (supervisor.py): its own configuration load (nothing
    unpicklable crosses over), on the supervisor's port and Redis."""
    settings, rules = load_config(config_path, dict(os.environ))
    settings = with_changes(settings, server={"port": port})  # a --port given to the parent
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_forever(settings, rules, make_app, redis_url, None, True, siblings))
