"""What the durable transit log costs, side by side in one run.

    .venv/bin/python -m bench.bench_transits --permits 1000000 --rounds 3 --duration 10

(a) `empty`: aiohttp + uvloop decoding the same body, a fixed answer (the stack's ceiling);
(b) `check`: Varco's transit check, nothing recorded (`create_app(record=False)`);
(c) `logged`: the same check, each transit written to Redis (append-only, `appendfsync
    always`: acknowledged = on disk) before the reply, by group commit.

Every request carries a new event id (a repeated one would be answered from the dedup keys
without a write). Servers run pinned to core 0, wrk and Redis to core 1 (Redis is a separate
server in production); rounds interleave the servers. Two loads:

- saturation: 32 connections (`--connections`), as fast as they go: throughput, p50, p99,
  ratio to (a). An acknowledgement waits for an fsync, so the logged server is bound by
  latency before CPU: a city's hundreds of cameras are hundreds of connections, and
  `--connections 128` shows the throughput they get;
- paced: 50 connections each waiting 10 ms between requests (~5,000 transits/s offered):
  the acknowledgement latency a camera sees at that rate (target p99 <= 10 ms).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis

from .bench_http import free_port, launch, prepare, wrk

ROOT = Path(__file__).resolve().parent.parent
GATE = "PD-03"


def lua_script(
    path: Path,
    plates: list[str],
    pace_ms: int | None,
    ts: str | None = None,
    gate: str = GATE,
    tail: str = "",
) -> None:
    """A wrk script posting transits of `plates` in turn, each with a new event id, at the
    RFC 3339 instant `ts` (default now); `tail` is appended (e.g. a `done` function)."""
    ts = ts or time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    lua_plates = ", ".join(f'"{p}"' for p in plates)
    delay = f"delay = function() return {pace_ms} end" if pace_ms else ""
    path.write_text(f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer demo-camera"
local plates = {{ {lua_plates} }}
local i = 0
local run = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
request = function()
  i = i + 1
  local body = '{{"event_id":"' .. run .. '-' .. i .. '","camera":"cam-1","gate":"{gate}",' ..
    '"plate":"' .. plates[(i % #plates) + 1] .. '","ts":"{ts}","confidence":0.92}}'
  return wrk.format(nil, "/v1/transits", nil, body)
end
{delay}
{tail}
""")


def start(kind: str, port: int, data: Path, redis_url: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, VARCO_DATA_DIR=str(data), PYTHONPATH=str(ROOT), REDIS_URL="off")
    if kind == "empty":
        cmd = [sys.executable, "-m", "bench.empty_server", str(port)]
    elif kind == "check":
        cmd = [sys.executable, "-m", "bench.varco_server", str(port), "--no-log"]
    else:
        cmd = [sys.executable, "-m", "bench.varco_server", str(port), "--redis", redis_url]
    return launch(kind, cmd, env, port, "healthz" if kind == "empty" else "readyz")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument("--connections", type=int, default=32, help="for the saturation runs")
    args = p.parse_args(argv)
    kinds = ("empty", "check", "logged")
    with tempfile.TemporaryDirectory(prefix="varco-bench-") as tmp:
        data = Path(tmp)
        print(f"preparing a snapshot of {args.permits:,} permits ...", flush=True)
        permitted, unknown = prepare(data, args.permits)
        plates = permitted + unknown
        fast, paced = data / "fast.lua", data / "paced.lua"
        lua_script(fast, plates, None)
        lua_script(paced, plates, 10)
        server = EmbeddedRedis(data / "redis")
        server.start()
        assert server.process is not None
        subprocess.run(
            ["taskset", "-pc", "1", str(server.process.pid)], check=True, capture_output=True
        )
        ports = {k: free_port() for k in kinds}
        procs = {k: start(k, ports[k], data, server.url) for k in kinds}
        sat: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        pace: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        try:
            for k in kinds:  # warm-up
                wrk(ports[k], fast, 2, 32)
            for r in range(args.rounds):
                for k in kinds:
                    res = wrk(ports[k], fast, args.duration, args.connections)
                    sat[k].append(res)
                    print(
                        f"round {r + 1} saturation {k:7} {res['rps']:8.0f} req/s  p50 "
                        f"{res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  "
                        f"non-2xx {res['non_2xx']:.0f}",
                        flush=True,
                    )
                for k in kinds:
                    res = wrk(ports[k], paced, args.duration, 50)
                    pace[k].append(res)
                    print(
                        f"round {r + 1} paced      {k:7} {res['rps']:8.0f} req/s  p50 "
                        f"{res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  "
                        f"non-2xx {res['non_2xx']:.0f}",
                        flush=True,
                    )
            r_ = redis.Redis.from_url(server.url)
            logged = r_.xlen(Keys("varco").transits)
            r_.close()
        finally:
            for proc in procs.values():
                proc.terminate()
                proc.wait(timeout=10)
            server.stop()

    def med(runs: list[dict[str, float]], m: str) -> float:
        return statistics.median(x[m] for x in runs)

    print(
        f"\nmedians of {args.rounds} rounds, {args.permits:,} permits, {args.connections} "
        "connections for saturation; servers on core 0, "
        "wrk and Redis on core 1"
    )
    print(f"{'saturation':12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'ratio':>8}")
    base = med(sat["empty"], "rps")
    for k in kinds:
        print(
            f"{k:12}{med(sat[k], 'rps'):>10.0f}{med(sat[k], 'p50_ms'):>9.2f}"
            f"{med(sat[k], 'p99_ms'):>9.2f}{med(sat[k], 'rps') / base:>8.2f}"
        )
    per_round = [b["rps"] / a["rps"] for a, b in zip(sat["empty"], sat["logged"], strict=True)]
    print(f"logged/empty per round: {', '.join(f'{x:.2f}' for x in per_round)} (target >= 0.80)")
    print(f"\n{'paced':12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
    for k in kinds:
        print(
            f"{k:12}{med(pace[k], 'rps'):>10.0f}{med(pace[k], 'p50_ms'):>9.2f}"
            f"{med(pace[k], 'p99_ms'):>9.2f}"
        )
    print(
        f"acknowledgement p99 with durable logging at ~{med(pace['logged'], 'rps'):.0f}/s: "
        f"{med(pace['logged'], 'p99_ms'):.2f} ms (target <= 10 ms)"
    )
    print(f"transits in the Redis stream at the end: {logged:,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
