"""bench.compare's servers: the kinds, how each is started and pinned, and which processes'
CPU time it costs.

Every single-process server runs on core 0; wrk, the Redis servers and the PostgreSQL backends
on core 1. The `-w2` kinds are `varco serve --workers 2` (the supervisor and two workers,
enforcement/http/supervisor.py) allowed on both cores: on a 2-core host the second worker
shares core 1 with wrk and the stores, so their ratio to one worker says what a second
process buys here, not what a second core of its own would.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import bench_transits

from .bench_http import launch
from .compare_data import CONFIG, ROOT, with_db
from .peer_server import APP_NAME
from .processes import children, cpu_s, listeners

KINDS = (
    "empty",
    "check",
    "logged",
    "floor",
    "pg",
    "redis",
    "pg-logged",
    "redis-logged",
    "check-w2",
    "logged-w2",
)
LABELS = {
    "empty": "(a) empty handler",
    "check": "(b) Varco check",
    "logged": "(c) Varco check + durable log",
    "floor": "(c') empty handler + durable log",
    "pg": "(d) PostgreSQL",
    "redis": "(e) Redis",
    "pg-logged": "(f) PostgreSQL + INSERT",
    "redis-logged": "(g) Redis + XADD",
    "check-w2": "(h) Varco check, 2 workers",
    "logged-w2": "(i) Varco + log, 2 workers",
}
REQUIRED = ("empty", "check")  # the ceiling and the reference every answer is verified against
WORKERS_CORES = "0,1"


def pin(pid: int, core: int | str) -> None:
    subprocess.run(["taskset", "-apc", str(core), str(pid)], check=True, capture_output=True)


def pin_pg_backends(dsn: str, core: int) -> int:
    import psycopg

    with psycopg.connect(dsn) as con:
        pids = [
            r[0]
            for r in con.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (APP_NAME,)
            )
        ]
    for pid in pids:
        pin(pid, core)
    return len(pids)


def start_workers(
    kind: str, port: int, data: Path, log_url: str, workers: int = 2
) -> subprocess.Popen[bytes]:
    """The supervisor of `varco serve --workers N` serving bench/varco_server.py's app (the
    same as (b) or (c)), on cores 0 and 1; returns once every worker listens and answers."""
    env = dict(os.environ, VARCO_DATA_DIR=str(data), PYTHONPATH=str(ROOT), REDIS_URL="off")
    logged = kind.startswith("logged")
    kwargs = {"record": logged, "log_redis": log_url if logged else None}
    cmd = [
        sys.executable,
        "-m",
        "enforcement.http.supervisor",
        "--config",
        str(CONFIG),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--redis",
        "off",
        "--redis-dir",
        str(data / "unused-redis"),
        "--redis-max-memory",
        "0",
        "--app",
        "bench.varco_server:bench_app",
        "--app-kwargs",
        json.dumps(kwargs),
    ]
    proc = launch(kind, cmd, env, port, "readyz", core=WORKERS_CORES)
    deadline = time.monotonic() + 60
    while listeners(port) < workers:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()  # the supervisor stops its workers
            proc.wait(20)
            raise RuntimeError(f"{kind}: {listeners(port)} of {workers} workers listen")
        time.sleep(0.2)
    return proc


def start_servers(
    args: argparse.Namespace,
    kinds: tuple[str, ...],
    ports: dict[str, int],
    data: Path,
    log_url: str,
    peer_url: str,
    db: str,
    procs: dict[str, subprocess.Popen[bytes]],
) -> int:
    """Start every kind of `kinds` into `procs` (so that, on an error, the caller stops what
    was started); returns the count of PostgreSQL backends pinned."""
    env = dict(os.environ, VARCO_DATA_DIR=str(data), PYTHONPATH=str(ROOT), REDIS_URL="off")
    peer_dsn = with_db(args.pg_dsn, db, args.pg_socket)
    peers = {
        "pg": ("bench.peer_server", "pg", peer_dsn, "--pool", str(args.pg_pool)),
        "redis": ("bench.peer_server", "redis", peer_url),
        "pg-logged": ("bench.peer_logged", "pg-logged", peer_dsn, "--pool", str(args.pg_log_pool)),
        "redis-logged": ("bench.peer_logged", "redis-logged", peer_url),
    }
    for k in kinds:
        if k in ("empty", "check", "logged", "floor"):
            procs[k] = bench_transits.start(k, ports[k], data, log_url)
        elif k in peers:
            module, *rest = peers[k]
            cmd = [sys.executable, "-m", module, str(ports[k]), *rest]
            procs[k] = launch(k, cmd, env, ports[k], "healthz")
        else:
            procs[k] = start_workers(k, ports[k], data, log_url)
    pinned = 0
    if {"pg", "pg-logged"} & set(kinds):
        pinned = pin_pg_backends(with_db(args.pg_dsn, db), 1)
    return pinned


def server_pids(proc: subprocess.Popen[bytes]) -> list[int]:
    """The processes whose CPU a request costs: the server, and a supervisor's workers."""
    return [proc.pid, *children(proc.pid)]


def cpu_total(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a worker restarted since: its CPU is lost
            total += cpu_s(pid)
    return total


def stop_all(procs: dict[str, Any]) -> None:
    for p in procs.values():
        p.terminate()  # a supervisor stops its workers on SIGTERM
    for p in procs.values():
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
