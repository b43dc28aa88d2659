"""Resident memory of N worker processes sharing one memory-mapped snapshot.

    .venv/bin/python -m bench.bench_workers --permits 1000000 10000000 --workers 1 2 4

Writes a snapshot of synthetic permits (the demo's permit types and zones, Italian car plates,
~8 % of plates with a second permit) straight into a temporary data directory, starts the real
service on it, `varco serve --workers N` (REDIS_URL=off: it loads the snapshot from disk), and
reads every worker's /proc/<pid>/smaps_rollup and the snapshot mapping's lines of
/proc/<pid>/smaps: once when all workers listen, once more after a load of transits (90 %) and
police lookups (10 %) over 64 keep-alive connections, which SO_REUSEPORT spreads over the
workers. PSS (proportional set size) charges each shared page to its N mappers in equal parts,
so the sum over the workers counts the snapshot once: PSS(N) - PSS(N - 1) is what one more
worker really costs. With --workers 1 the service is a single process; with more, a supervisor
(and multiprocessing's resource tracker) run beside the workers and are reported apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

from enforcement.config.load import load_config
from enforcement.core.index import END_UNLIMITED, IndexMeta, build_index
from enforcement.core.plates import key_plate
from enforcement.core.rules import zone_mask
from enforcement.core.snapshot import SUFFIX
from loader.rebuild import publish

from .bench_http import CONFIG, GATE, ROOT, free_port
from .bench_index import synthetic_keys
from .processes import (
    become_subreaper,
    children,
    cmdline,
    cpu_s,
    group_members,
    listeners,
    rollup,
)

MB = 1 << 20
VARCO = ROOT / ".venv" / "bin" / "varco"


def prepare(data_dir: Path, n: int, samples: int) -> tuple[list[str], list[str], int]:
    """Publish a snapshot of n permits; return (permitted, unknown) sample plates, file size."""
    settings, rules = load_config(CONFIG, {"VARCO_DATA_DIR": str(data_dir), "REDIS_URL": "off"})
    rng = np.random.default_rng(7)
    n_plates = int(n / 1.08)
    n_unknown = samples // 4
    keys = synthetic_keys(n_plates + n_unknown, rng)
    plates, unknown = keys[:n_plates], keys[n_plates:]
    plate_keys = np.concatenate([plates, plates[rng.integers(0, n_plates, n - n_plates)]])
    types, zones = tuple(rules.types), tuple(rules.zones)
    type_zones = np.array([zone_mask(rules.types[t].zones, zones) for t in types])
    type_no = rng.integers(0, len(types), n)
    now = int(time.time())
    start = now - rng.integers(0, 3 * 365 * 86400, n)
    end = np.where(
        rng.random(n) < 0.5, END_UNLIMITED, start + rng.integers(3600, 3 * 365 * 86400, n)
    )
    index = build_index(
        IndexMeta(1, now, types, zones),
        plate_keys,
        start,
        end,
        type_zones[type_no],
        np.arange(n),
        type_no,
        np.ones(n),
        [f"PD-{i:08d}" for i in range(n)],
    )
    path = publish(index, settings.storage.snapshot_dir, max_shrink=1.0)
    del index
    with open("/proc/self/maps") as f:  # a mapping here would take a share of the PSS
        assert SUFFIX not in f.read(), "the benchmark process still maps the snapshot"
    sample = plates[rng.integers(0, n_plates, samples - n_unknown)]
    return (
        [key_plate(int(k)) for k in sample],
        [key_plate(int(k)) for k in unknown],
        path.stat().st_size,
    )


# --- processes ---------------------------------------------------------------------------


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    port: int
    workers: list[int]
    helpers: list[int]  # supervisor and resource tracker (none with one worker)
    ready_s: float


def start(data_dir: Path, n_workers: int, log: Path) -> Service:
    port = free_port()
    env = dict(os.environ, VARCO_DATA_DIR=str(data_dir), REDIS_URL="off", PYTHONPATH=str(ROOT))
    cmd = [
        str(VARCO),
        "--config",
        str(CONFIG),
        "serve",
        "--workers",
        str(n_workers),
        "--port",
        str(port),
    ]
    t0 = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    service = Service(proc, port, [], [], 0.0)
    try:
        deadline = t0 + 600
        while listeners(port) < n_workers or not ready(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"service did not become ready; see {log}:\n" + log.read_text()[-2000:]
                )
            time.sleep(0.2)
        service.ready_s = time.monotonic() - t0
        if n_workers == 1:
            service.workers = [proc.pid]
        else:
            kids = children(proc.pid)
            service.workers = [p for p in kids if "spawn_main" in cmdline(p)]
            service.helpers = [proc.pid, *(p for p in kids if p not in service.workers)]
        assert len(service.workers) == n_workers, (service.workers, n_workers)
        return service
    except BaseException:
        stop(service)
        raise


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def stop(service: Service) -> None:
    """SIGTERM to the whole process group, SIGKILL what is left, reap what we inherited."""
    proc, pgid = service.proc, service.proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    for pid in children(os.getpid()):  # orphans of the supervisor (see become_subreaper)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


# --- memory ------------------------------------------------------------------------------


@dataclass
class Sample:
    workers: list[dict[str, int]]
    helpers: list[dict[str, int]]

    def total(self, key: str, who: str = "workers") -> int:
        return sum(r[key] for r in getattr(self, who))

    def mean(self, key: str) -> float:
        return self.total(key) / len(self.workers)


def sample(service: Service) -> Sample:
    return Sample([rollup(p) for p in service.workers], [rollup(p) for p in service.helpers])


# --- load --------------------------------------------------------------------------------


async def load(
    port: int, permitted: list[str], unknown: list[str], n: int, connections: int = 64
) -> dict[int, int]:
    """n requests: 90 % transits at the always-enforced gate (80 % permitted plates), 10 %
    police lookups. Returns the count by HTTP status."""
    rnd = random.Random(5)
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    base = f"http://127.0.0.1:{port}"
    camera = {"Authorization": "Bearer demo-camera"}
    # Every police lookup gives a reason (and is written to the audit trail first).
    police = {"Authorization": "Bearer demo-police", "X-Reason": "bench: load test"}
    todo: list[tuple[str, str, dict[str, str], dict[str, object] | None]] = []
    for i in range(n):
        plate = rnd.choice(permitted) if rnd.random() < 0.8 else rnd.choice(unknown)
        if rnd.random() < 0.1:
            todo.append(("GET", f"{base}/v1/plates/{plate}", police, None))
        else:
            body = {
                "event_id": f"mem-{i}",
                "camera": "cam-1",
                "gate": GATE,
                "plate": plate,
                "ts": ts,
                "confidence": 0.9,
            }
            todo.append(("POST", f"{base}/v1/transits", camera, body))
    status: dict[int, int] = {}
    it = iter(todo)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            for method, url, headers, body in it:
                async with session.request(method, url, headers=headers, json=body) as r:
                    await r.read()
                    status[r.status] = status.get(r.status, 0) + 1

        await asyncio.gather(*(client() for _ in range(connections)))
    return status


# --- the run -----------------------------------------------------------------------------


@dataclass
class Row:
    permits: int
    n: int
    file_bytes: int
    ready_s: float
    start: Sample
    after: Sample
    cpu: list[float] = field(default_factory=list)  # per worker, seconds during the load


def measure(
    data: Path,
    n_permits: int,
    n_workers: int,
    plates: tuple[list[str], list[str]],
    requests: int,
    file_bytes: int,
) -> Row:
    service = start(data, n_workers, data / "service.log")
    try:
        time.sleep(1.0)  # let start-up garbage settle
        at_start = sample(service)
        cpu0 = [cpu_s(p) for p in service.workers]
        status = asyncio.run(load(service.port, *plates, requests))
        if set(status) != {200}:
            print(f"  warning: responses by status {status}", flush=True)
        time.sleep(0.5)
        cpu = [cpu_s(p) - c for p, c in zip(service.workers, cpu0, strict=True)]
        after = sample(service)
    finally:
        stop(service)
    return Row(n_permits, n_workers, file_bytes, service.ready_s, at_start, after, cpu)


def report_run(row: Row) -> None:
    print(
        f"  {row.n} worker(s): ready in {row.ready_s:.1f} s; CPU s per worker during the load "
        + ", ".join(f"{c:.1f}" for c in row.cpu),
        flush=True,
    )
    for when, s in (("start", row.start), ("after load", row.after)):
        for i, r in enumerate(s.workers):
            print(
                f"    {when:10} worker {i}: Rss {r['Rss'] / MB:7.1f}  Pss {r['Pss'] / MB:7.1f}"
                f"  Pss_Anon {r['Pss_Anon'] / MB:6.1f}  Pss_File {r['Pss_File'] / MB:6.1f}"
                f"  Shared_Clean {r['Shared_Clean'] / MB:6.1f}"
                f"  Private_Clean {r['Private_Clean'] / MB:5.1f}"
                f"  Private_Dirty {r['Private_Dirty'] / MB:6.1f}"
                f"  snapshot Rss {r['Snapshot_Rss'] / MB:6.1f} Pss {r['Snapshot_Pss'] / MB:6.1f}"
            )
        if s.helpers:
            print(
                f"    {when:10} supervisor + resource tracker: Rss "
                f"{s.total('Rss', 'helpers') / MB:.1f}  Pss {s.total('Pss', 'helpers') / MB:.1f}"
            )


def table(rows: list[Row]) -> str:
    head = (
        "| permits | workers | snapshot file, MB | RSS of one worker, MB | of it the snapshot, "
        "MB | worker's own (anon), MB | PSS of all workers at start, MB | PSS of all workers "
        "after load, MB | + per extra worker, MB | supervisor PSS, MB |"
    )
    out = [head, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    prev: dict[int, Row] = {}
    for r in rows:
        a = r.after
        before = prev.get(r.permits)
        extra = (
            "–"
            if before is None
            else f"{(a.total('Pss') - before.after.total('Pss')) / (r.n - before.n) / MB:,.1f}"
        )
        sup = f"{a.total('Pss', 'helpers') / MB:,.1f}" if a.helpers else "–"
        out.append(
            f"| {r.permits:,} | {r.n} | {r.file_bytes / MB:,.0f} | {a.mean('Rss') / MB:,.1f}"
            f" | {a.mean('Snapshot_Rss') / MB:,.1f} | {a.mean('Anonymous') / MB:,.1f}"
            f" | {r.start.total('Pss') / MB:,.1f} | {a.total('Pss') / MB:,.1f} | {extra}"
            f" | {sup} |"
        )
        prev[r.permits] = r
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, nargs="+", default=[1_000_000, 10_000_000])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--requests", type=int, default=20_000, help="requests of the load")
    args = p.parse_args(argv)
    become_subreaper()
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
        f"page size {os.sysconf('SC_PAGE_SIZE')}",
        flush=True,
    )
    rows = []
    for n in args.permits:
        with tempfile.TemporaryDirectory(prefix="varco-bench-workers-") as tmp:
            data = Path(tmp)
            t0 = time.perf_counter()
            permitted, unknown, size = prepare(data, n, samples=20_000)
            print(
                f"{n:,} permits: snapshot of {size / MB:,.0f} MB written in "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            for w in sorted(args.workers):
                row = measure(data, n, w, (permitted, unknown), args.requests, size)
                report_run(row)
                rows.append(row)
    print("\nafter the load (RSS and anon: mean over the workers; PSS: sum over the workers)\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
