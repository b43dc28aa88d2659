"""`varco serve --workers N`'s parent: claims the port, starts the embedded Redis when none is
configured, runs N worker processes, restarts one that dies, passes SIGHUP on, and stops
everything on SIGTERM or SIGINT.

It serves nothing itself, so it is a process of its own that imports none of what serving
needs: the command line replaces itself with `python -m enforcement.http.supervisor` (the same
pid, for systemd and Docker), whose imports are this module, the log filter and the embedded
Redis (about 16 MB of memory against 49 MB for a parent that had imported the whole command
line, aiohttp, numpy and the permit database's drivers). The application to serve is named
(`module:function`, with JSON keyword arguments), and imported by the workers only.

The port is claimed first (ports.py): the workers then bind with SO_REUSEPORT, and only they
can.

Each worker gets a slot and a private directory (mode 0700) in which the workers answer each
other's `/metrics` (siblings.py), so that one scrape is the whole service.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import logging
import multiprocessing
import multiprocessing.process
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, NoReturn

from ..logs import configure as configure_logging
from .ports import PortInUse, claim_port

log = logging.getLogger("varco")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"


def exec_supervisor(
    config_path: Path,
    host: str,
    port: int,
    workers: int,
    redis: str | None,
    redis_dir: Path,
    redis_max_memory: int,
    app: str,
    app_kwargs: dict[str, Any],
) -> NoReturn:
    """Replace this process (the command line) with the supervisor; never returns. `redis`
    as configured: a URL, "off", or None (start our own in `redis_dir`)."""
    argv = [
        sys.executable,
        "-m",
        __name__,
        "--config",
        str(config_path),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--redis",
        "" if redis is None else redis,
        "--redis-dir",
        str(redis_dir),
        "--redis-max-memory",
        str(redis_max_memory),
        "--app",
        app,
        "--app-kwargs",
        json.dumps(app_kwargs),
    ]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, argv)


def _worker(
    config_path: Path,
    port: int,
    redis_url: str | None,
    app: str,
    app_kwargs: dict[str, Any],
    slot: int,
    count: int,
    directory: Path,
) -> None:
    """A worker process: its own configuration load and imports (nothing unpicklable, and
    nothing the supervisor does not need, crosses over)."""
    configure_logging(LOG_FORMAT)
    from .server import run_worker
    from .siblings import Siblings

    module, _, name = app.partition(":")
    make_app = functools.partial(getattr(importlib.import_module(module), name), **app_kwargs)
    run_worker(config_path, port, redis_url, make_app, Siblings(directory, slot, count))


def serve_workers(args: argparse.Namespace) -> None:
    """Run `args.workers` processes on one port until SIGTERM or SIGINT; restart any that
    die."""
    from ..replica.redis_server import EmbeddedRedis

    lock = claim_port(args.host, args.port)
    embedded = None
    redis_url: str | None = args.redis or None
    if args.redis == "off":
        redis_url = None
    elif not args.redis:
        server = EmbeddedRedis(Path(args.redis_dir), args.redis_max_memory)
        redis_url, embedded = server.url, server if server.start() else None
    directory = Path(tempfile.mkdtemp(prefix="varco-workers-"))  # 0700: ours alone
    ctx = multiprocessing.get_context("spawn")
    kwargs = json.loads(args.app_kwargs)
    count = args.workers
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    def spawn(slot: int) -> multiprocessing.process.BaseProcess:
        config = Path(args.config)
        p = ctx.Process(
            target=_worker,
            args=(config, args.port, redis_url, args.app, kwargs, slot, count, directory),
            name=f"varco-worker-{slot}",
            daemon=False,
        )
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
    procs += [spawn(slot) for slot in range(count)]
    started = [time.monotonic()] * count
    quick_deaths = [0] * count  # a worker dying at start-up again and again backs off
    restart_at: list[float | None] = [None] * count
    log.info("%d workers on http://%s:%d", count, args.host, args.port)
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
                    procs[i], started[i], restart_at[i] = spawn(i), now, None
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
        shutil.rmtree(directory, ignore_errors=True)
        lock.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="varco serve --workers", description=__doc__)
    p.add_argument("--config", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--redis", default="", help='a URL, "off", or empty: start our own')
    p.add_argument("--redis-dir", required=True)
    p.add_argument("--redis-max-memory", type=int, default=0, help="our own Redis's maxmemory")
    p.add_argument("--app", required=True, help="module:function, an AppFactory")
    p.add_argument("--app-kwargs", default="{}")
    args = p.parse_args(argv)
    configure_logging(LOG_FORMAT.replace("[%(process)d]", ""))
    try:
        serve_workers(args)
    except PortInUse as exc:
        print(f"varco serve: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
