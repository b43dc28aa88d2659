"""bench.compare's (a) empty handler against (b) Varco's check, by instructions per request
counted by callgrind (bench/instructions.py): the steady complement of their throughput ratio
on a shared host, where wrk's figures swing with the neighbours' load.

    .venv/bin/python -m bench.compare_instructions [--permits 200000] [--posts 400] [--log]

Both servers run under callgrind as bench.compare starts them (the check without the log,
admission control fixed and unbounded: callgrind runs ~50x slower, which would otherwise
shed), each answers the compare's transit stream (its dataset, gate and plates: 80 %
permitted, 20 % unknown) over 8 keep-alive connections; round 0 warms up, rounds 1 and 2
count. Printed: instructions per request and empty ÷ check, the ratio bench.compare's goal
puts at 0.85 (it does not weigh cache misses, which the index's lookups add under load).

--log adds (c') the floor, the empty handler writing a fixed record by group commit
(bench/empty_server.py --log), and (c) Varco's check with its durable transit log, both on a
Redis of their own (`appendfsync always`): floor ÷ logged is what Varco's log costs over the
least any logged answer costs (8 connections: groups of up to 8 transits).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path

from enforcement.replica.redis_server import EmbeddedRedis

from . import instructions
from .bench_http import free_port, launch
from .compare_data import GATE, ROOT, make_dataset, publish_snapshot

HEADERS = {"Authorization": "Bearer demo-camera", "Content-Type": "application/json"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=200_000)
    p.add_argument("--posts", type=int, default=400, help="per server and round")
    p.add_argument("--keep-dumps", type=Path, help="keep each callgrind dump here")
    p.add_argument("--log", action="store_true", help="also the floor and the logged check")
    args = p.parse_args(argv)
    if not instructions.available():
        print("needs valgrind (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="varco-compare-instr-") as tmp:
        data = Path(tmp)
        ds = make_dataset(args.permits)
        publish_snapshot(ds, data)
        env = dict(os.environ, VARCO_DATA_DIR=str(data), PYTHONPATH=str(ROOT), REDIS_URL="off")
        ts = dt.datetime.fromtimestamp(ds.t, dt.UTC).isoformat()
        redis = None
        if args.log:
            redis = EmbeddedRedis(data / "redis")
            redis.start()
        kinds = ("empty", "check", *(("floor", "logged") if args.log else ()))
        ports = {k: free_port() for k in kinds}
        fixed = ("--target-latency-ms", "0", "--queue-wait-ms", "600000", "--max-in-flight", "4096")
        commands = {
            "empty": [sys.executable, "-m", "bench.empty_server", str(ports["empty"])],
            "check": [
                *(sys.executable, "-m", "bench.varco_server", str(ports["check"]), "--no-log"),
                *fixed,
            ],
        }
        if redis is not None:
            commands["floor"] = [
                *(sys.executable, "-m", "bench.empty_server", str(ports["floor"])),
                *("--log", redis.url),
            ]
            commands["logged"] = [
                *(sys.executable, "-m", "bench.varco_server", str(ports["logged"])),
                *("--redis", redis.url, *fixed),
            ]
        print("starting both servers under callgrind (a minute or more) ...", flush=True)
        procs = {}
        per_request: dict[str, list[float]] = {k: [] for k in commands}
        try:
            for k, cmd in commands.items():
                (data / k).mkdir()
                ready = "healthz" if k in ("empty", "floor") else "readyz"
                cg = instructions.under_callgrind(cmd, data / k)
                procs[k] = launch(k, cg, env, ports[k], ready, timeout_s=600)
            for r in range(3):
                for k in commands:
                    bodies = [
                        (
                            f'{{"event_id":"{k}-r{r}-{i}","camera":"cam-1","gate":"{GATE}",'
                            f'"plate":"{ds.sample[i % len(ds.sample)]}","ts":"{ts}",'
                            '"confidence":0.92}'
                        ).encode()
                        for i in range(args.posts)
                    ]
                    counter = instructions.Callgrind(procs[k].pid, data / k)

                    def send(port: int = ports[k], b: list[bytes] = bodies) -> None:
                        instructions.post(port, "/v1/transits", HEADERS, b, 8)

                    if r == 0:
                        counter.start_counting()
                        send()
                        continue
                    keep = None if args.keep_dumps is None else args.keep_dumps / f"{k}.{r}"
                    if keep is not None:
                        keep.parent.mkdir(parents=True, exist_ok=True)
                    per_request[k].append(counter.count(send, keep) / args.posts)
                    print(f"round {r} {k:6} {per_request[k][-1]:10,.0f} instructions/request")
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=60)
            if redis is not None:
                redis.stop()
    best = {k: min(v) for k, v in per_request.items()}
    print(
        f"\n{args.permits:,} permits, {args.posts} posts per round, best of 2 rounds, "
        "instructions per request: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in best.items())
        + f"; empty ÷ check {best['empty'] / best['check']:.3f}"
    )
    if args.log:
        print(
            f"empty ÷ floor {best['empty'] / best['floor']:.3f}, floor ÷ logged "
            f"{best['floor'] / best['logged']:.3f}, empty ÷ logged "
            f"{best['empty'] / best['logged']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
