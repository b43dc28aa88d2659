"""Running the service: Redis, the event loop (uvloop where available), workers, signals.

What is served comes from `make_app(settings, rules, redis_url)` (the composition's
`create_app` with its extensions), on connections bounded by connections.py. `serve` runs one
process; `serve_workers` runs N worker processes on one port (SO_REUSEPORT: the kernel spreads
connections), each mapping the same snapshot file, so the index's pages are in memory once.
The parent starts the embedded Redis when none is configured, restarts a worker that dies, and
stops everything on SIGTERM or SIGINT.

A port already in use is refused (PortInUse), never shared: SO_REUSEPORT would let a second
service, judging on another permit database, take half the traffic without a word. So one
process binds without it, and a set of workers first claims the port for itself (a lock
named after it, held by the parent) and checks that nothing else listens there.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import multiprocessing
import multiprocessing.process
import os
import resource
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..config.load import load_config
from ..config.settings import Settings, with_changes
from ..core.rules import Rules
from ..logs import configure as configure_logging
from ..replica.hangup import on_hangup
from ..replica.redis_server import start_redis
from .connections import GuardedRunner

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


class PortInUse(Exception):
    """The configured address is taken: by another Varco, or another program."""


def _in_use(host: str, port: int) -> PortInUse:
    return PortInUse(
        f"{host}:{port} is already in use (another varco serve, or another program); "
        "stop it, or choose another [server] port / --port"
    )


async def start_site(
    app: web.Application, settings: Settings, *, reuse_port: bool = False
) -> GuardedRunner:
    """`app` served on the settings' address with bounded connections; the runner, to
    clean up. `reuse_port` only for the workers of one `serve_workers`."""
    runner = GuardedRunner(app, settings.server)
    await runner.setup()
    host, port = settings.server.host, settings.server.port
    site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, backlog=1024)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise _in_use(host, port) from None
        raise
    return runner


async def serve_forever(
    settings: Settings,
    rules: Rules,
    make_app: AppFactory,
    redis_url: str | None,
    ready: Callable[[], None] | None = None,
    reuse_port: bool = False,
) -> None:
    await serve_app(make_app(settings, rules, redis_url), settings, ready, reuse_port)


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
    configure_logging(fmt)
    settings, rules = load_config(config_path, env)
    settings = with_changes(settings, server={"port": port})  # a --port given to the parent
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve_forever(settings, rules, make_app, redis_url, reuse_port=True))


def claim_port(host: str, port: int) -> socket.socket:
    """Hold the port for one set of workers: a lock named after it (a Linux abstract socket,
    gone with the process), then a bind without SO_REUSEPORT, which fails if anything
    listens there. The workers then bind with SO_REUSEPORT, and only they can."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0varco-serve-port-{port}")
    except OSError:
        lock.close()
        raise _in_use(host, port) from None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            lock.close()
            if exc.errno == errno.EADDRINUSE:
                raise _in_use(host, port) from None
            raise
    return lock


def serve_workers(
    settings: Settings, env: dict[str, str], workers: int, make_app: AppFactory
) -> None:
    """Run `workers` processes on one port until SIGTERM or SIGINT; restart any that die."""
    lock = claim_port(settings.server.host, settings.server.port)
    redis_url, embedded = start_redis(settings)
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def spawn() -> multiprocessing.process.BaseProcess:
        args = (settings.config_path, env, settings.server.port, redis_url, make_app)
        p = ctx.Process(target=_worker, args=args, name="varco-worker", daemon=False)
        # Started with SIGHUP ignored (kept across exec) until its event loop handles it: a
        # hang-up while a worker starts must not kill it.
        handler = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        try:
            p.start()
        finally:
            signal.signal(signal.SIGHUP, handler)
        return p

    procs: list[multiprocessing.process.BaseProcess] = []

    def hangup(*_: object) -> None:  # passed on: each worker handles it (replica/hangup.py)
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, hangup)
    procs += [spawn() for _ in range(workers)]
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
        lock.close()
