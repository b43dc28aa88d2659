"""bench.compare's runs: per size, the stores filled, the servers started and pinned
(compare_servers.py), verified (answers, and the transits logged), then loaded by wrk in
interleaved rounds (throughput, latency percentiles, the server's CPU per request),
optionally profiled; and the in-process index (bench/bench_index.py) per size."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import bench_transits
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis

from .bench_http import free_port, parse_wrk, wrk_raw
from .compare_data import (
    GATE,
    ROOT,
    load_postgres,
    load_redis,
    make_dataset,
    publish_snapshot,
    with_db,
)
from .compare_profile import profile
from .compare_servers import (
    KINDS,
    LABELS,
    cpu_total,
    pin,
    server_pids,
    start_servers,
    stop_all,
)
from .compare_verify import verify_logs, verify_servers

__all__ = ["KINDS", "LABELS", "measure_index", "measure_size"]
PERCENTILES = (1, 5, 10, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.9, 99.99)

# wrk calls done() once at the end: the latency percentiles for the distribution plot.
DONE_LUA = (
    "done = function(summary, latency, requests)\n"
    f"  for _, p in ipairs({{{', '.join(str(p) for p in PERCENTILES)}}}) do\n"
    '    io.write(string.format("PCT %g %d\\n", p, latency:percentile(p)))\n'
    "  end\n"
    "end\n"
)


def run_wrk(
    port: int, script: Path, duration: int, connections: int, pids: list[int] | None = None
) -> dict[str, Any]:
    """wrk's figures, the latency percentiles, and with `pids` the server's CPU time per
    request (summed over its processes): what a request costs the server whatever else runs
    beside it (on a shared host the throughput moves with the neighbours' load; the CPU per
    request much less). `rps` and `cpu_us` count the 2xx answers only: a server shedding
    load (503 `overloaded`, enforcement/http/admission.py) answers a refusal in a few µs, and
    its refusals must not pass for throughput (wrk's own rate is `wrk_rps`)."""
    before = cpu_total(pids) if pids else 0.0
    out = wrk_raw(port, script, duration, connections)
    res: dict[str, Any] = parse_wrk(out)
    res["pct_ms"] = {
        m.group(1): int(m.group(2)) / 1000 for m in re.finditer(r"^PCT (\S+) (\d+)$", out, re.M)
    }
    done = re.search(r"(\d+) requests in", out)
    requests = int(done.group(1)) if done else 0
    ok = max(requests - int(res["non_2xx"]), 0)
    res["requests"], res["wrk_rps"] = requests, res["rps"]
    res["rps"] = res["wrk_rps"] * ok / requests if requests else 0.0
    if pids and ok:
        res["cpu_us"] = (cpu_total(pids) - before) / ok * 1e6
    return res


def rss_mb(pid: int) -> float:
    total = 0
    for child in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{child}/status") as f:
                m = re.search(r"VmRSS:\s+(\d+) kB", f.read())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def measure_size(args: argparse.Namespace, n: int) -> dict[str, Any]:
    kinds: tuple[str, ...] = tuple(k for k in KINDS if k in args.kinds)
    out: dict[str, Any] = {"permits": n, "kinds": list(kinds)}
    with tempfile.TemporaryDirectory(prefix="varco-compare-") as tmp:
        data = Path(tmp)
        t0 = time.perf_counter()
        print(f"\n== {n:,} permits: dataset and Varco snapshot ...", flush=True)
        ds = make_dataset(n)
        snap = publish_snapshot(ds, data)
        out["snapshot_bytes_per_permit"] = snap.stat().st_size / n
        out["prepare_s"] = time.perf_counter() - t0
        db = f"varco_compare_{os.getpid()}"
        import psycopg

        base = args.pg_dsn
        db_dsn = with_db(base, db)
        with psycopg.connect(base, autocommit=True) as con:
            con.execute(f"DROP DATABASE IF EXISTS {db}")
            con.execute(f"CREATE DATABASE {db}")
        log_redis = EmbeddedRedis(data / "log-redis")
        peer_redis = EmbeddedRedis(data / "peer-redis")
        procs: dict[str, Any] = {}
        try:
            print("PostgreSQL: COPY, btree index, VACUUM ANALYZE ...", flush=True)
            out["pg"] = load_postgres(ds, db_dsn)
            print(
                f"  {out['pg']['load_s']:.1f} s, {out['pg']['bytes_per_permit']:.0f} bytes/permit",
                flush=True,
            )
            log_redis.start()
            peer_redis.start()
            for r in (log_redis, peer_redis):
                assert r.process is not None
                pin(r.process.pid, 1)
            print("Redis: one key per plate, then the append-only file on ...", flush=True)
            out["redis"] = load_redis(ds, peer_redis.url)
            print(
                f"  {out['redis']['load_s']:.1f} s, "
                f"{out['redis']['bytes_per_permit']:.0f} bytes/permit",
                flush=True,
            )
            ports = {k: free_port() for k in kinds}
            out["pg"]["pinned_backends"] = start_servers(
                args, kinds, ports, data, log_redis.url, peer_redis.url, db, procs
            )
            print(f"verifying: {args.verify} transits to {', '.join(kinds[1:])} ...", flush=True)
            verified = verify_servers(ports, ds, args.verify)
            out["verdicts"] = verified.verdicts
            out["logged_rows"] = verify_logs(
                verified.answers, db_dsn, peer_redis.url, log_redis.url, Keys("varco").transits
            )
            print(
                "  every answer equal to Varco's; Varco's verdicts: "
                + ", ".join(f"{k} {v}" for k, v in sorted(out["verdicts"].items()))
                + "; transits logged as answered: "
                + ", ".join(f"{k} {v}" for k, v in out["logged_rows"].items()),
                flush=True,
            )
            ts = dt.datetime.fromtimestamp(ds.t, dt.UTC).isoformat()
            script = data / "stream.lua"
            bench_transits.lua_script(script, ds.sample, None, ts=ts, gate=GATE, tail=DONE_LUA)
            for k in kinds:  # warm-up: the first requests touch the mapped pages, fill caches
                wrk_raw(ports[k], script, 2, args.connections)
            pids = {k: server_pids(p) for k, p in procs.items()}
            loads = [
                ("c32", args.connections),
                ("c1", 1),
                *((f"c{c}", c) for c in args.also_connections),
            ]
            runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                k: {load: [] for load, _ in loads} for k in kinds
            }
            for r in range(args.rounds):
                order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
                for load, conns in loads:
                    for k in order:
                        res = run_wrk(ports[k], script, args.duration, conns, pids[k])
                        runs[k][load].append(res)
                        print(
                            f"round {r + 1} {load:>4} {k:12} {res['rps']:8.0f} req/s  p50 "
                            f"{res['p50_ms']:6.2f} ms  p99 {res['p99_ms']:6.2f} ms  server CPU "
                            f"{res.get('cpu_us', 0):4.0f} µs/req  non-2xx "
                            f"{res['non_2xx']:.0f}",
                            flush=True,
                        )
            out["runs"] = runs
            out["rss_mb"] = {k: rss_mb(p.pid) for k, p in procs.items()}
            if args.profile:
                out["profiles"] = {}
                for k in args.profile:
                    if k not in procs:
                        continue
                    path = args.profiles / f"{k}-{n}.txt"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    print(f"profiling {k} under load ({args.profile_seconds} s) ...", flush=True)
                    summary_ = profile(procs[k].pid, ports[k], script, args.profile_seconds, path)
                    out["profiles"][k] = {
                        "file": str(path.relative_to(ROOT))
                        if path.is_relative_to(ROOT)
                        else str(path),
                        **summary_,
                    }
        finally:
            stop_all(procs)
            log_redis.stop()
            peer_redis.stop()
            with psycopg.connect(base, autocommit=True) as con:
                con.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    return out


def measure_index(sizes: Sequence[int], dict_max: int) -> list[dict[str, float]]:
    rows = []
    for n in sizes:
        print(f"\n== in-process index, {n:,} permits (bench/bench_index.py) ...", flush=True)
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            cmd = [sys.executable, "-m", "bench.bench_index", "--sizes", str(n), "--json", f.name]
            if n > dict_max:
                cmd.append("--no-dict")
            subprocess.run(
                ["taskset", "-c", "0", *cmd], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
            )
            rows.extend(json.loads(Path(f.name).read_text()))
    return rows
