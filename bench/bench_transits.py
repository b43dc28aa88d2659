"""What the durable transit log costs, side by side in one run.

    .venv/bin/python -m bench.bench_transits --permits 1000000 --rounds 3 --duration 10

(a) `empty`: aiohttp + uvloop decoding the same body, a fixed answer (the stack's ceiling);
(b) `check`: Varco's transit check, nothing recorded (`create_app(record=False)`);
(c) `logged`: the same check, each transit written to Redis (append-only, `appendfsync
    always`: acknowledged = on disk) before the reply, by group commit;
(d) `base`, with `--baseline DIR`: (c) served from another source tree (e.g. `git archive
    main | tar -x -C DIR`, plus the built `_lookup*.so`): before and after a change to the log,
    side by side in one run;
(e) `floor`, with `--kinds ... floor`: (a) plus a fixed record written durably by group
    commit before each answer (bench/empty_server.py --log): the least any logged answer
    costs on this stack, so the ceiling for (c).

Every request carries a new event id (a repeated one would be answered from the dedup keys
without a write). Servers run pinned to core 0, wrk and Redis to core 1 (Redis is a separate
server in production); rounds interleave the servers. Two loads:

- saturation: 32 connections (`--connections 1 32 128` for several loads), as fast as they
  go: throughput, p50, p99, ratio to (a), the server's CPU per request (/proc: steadier than
  throughput on a shared host) and, for the logging servers, transits per group commit
  (their /metrics: one group is one Lua call, one fsync of Redis's append-only file). An
  acknowledgement waits for an fsync, so the logged server is bound by latency before CPU:
  a city's hundreds of cameras are hundreds of connections, and 128 shows what they get;
- paced: 50 connections each waiting 10 ms between requests (~5,000 transits/s offered):
  the acknowledgement latency a camera sees at that rate (target p99 <= 10 ms).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import redis

from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis

from .bench_http import free_port, launch, prepare, wrk
from .processes import cpu_s

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


def start(
    kind: str, port: int, data: Path, redis_url: str, tree: Path = ROOT, fixed: bool = False
) -> subprocess.Popen[bytes]:
    """Start server `kind`; `tree`: the source tree to serve `base` from; `fixed`: admission
    without its adaptive limit (a fixed 256 in flight), so that a log waiting on fsyncs is
    measured, not shed: a 503 costs a fraction of an answer and inflates req/s."""
    extra = ["--target-latency-ms", "0"] if fixed and kind != "empty" else []
    env = dict(os.environ, VARCO_DATA_DIR=str(data), PYTHONPATH=str(tree), REDIS_URL="off")
    if kind == "empty":
        cmd = [sys.executable, "-m", "bench.empty_server", str(port)]
    elif kind == "floor":
        cmd = [sys.executable, "-m", "bench.empty_server", str(port), "--log", redis_url]
    elif kind == "check":
        cmd = [sys.executable, "-m", "bench.varco_server", str(port), "--no-log", *extra]
    else:
        # -P: not the working directory (this tree) first on sys.path, PYTHONPATH's tree
        cmd = [sys.executable, "-P", "-m", "bench.varco_server", str(port), "--redis", redis_url]
        cmd += extra
    return launch(kind, cmd, env, port, "healthz" if kind in ("empty", "floor") else "readyz")


LOGGING = ("logged", "base")
_COUNTERS = ("varco_transits_logged_redis_total", "varco_transit_log_groups_total")


def log_counters(port: int) -> tuple[float, float]:
    """(transits written to Redis, group commits) from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    found = []
    for name in _COUNTERS:
        m = re.search(rf"^{name}(?:{{[^}}]*}})?\s+(\S+)$", text, re.M)
        found.append(float(m.group(1)) if m else 0.0)
    return found[0], found[1]


def saturate(
    kind: str, port: int, pid: int, script: Path, duration: int, connections: int
) -> dict[str, float]:
    """wrk's figures, the server's CPU µs per request and, logging, transits per group."""
    before = log_counters(port) if kind in LOGGING else (0.0, 0.0)
    cpu0 = cpu_s(pid)
    res = wrk(port, script, duration, connections)
    res["cpu_us"] = (cpu_s(pid) - cpu0) / max(res["requests"], 1) * 1e6
    if kind in LOGGING:
        after = log_counters(port)
        groups = after[1] - before[1]
        res["per_group"] = (after[0] - before[0]) / groups if groups else 0.0
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    p.add_argument(
        "--connections", type=int, nargs="+", default=[32], help="loads for the saturation runs"
    )
    p.add_argument(
        "--kinds", nargs="+", choices=("empty", "check", "logged", "floor", "base"), default=None
    )
    p.add_argument("--baseline", type=Path, help="source tree of server `base` (see above)")
    p.add_argument("--no-paced", action="store_true", help="skip the paced runs")
    p.add_argument("--redis-nice", type=int, default=0, help="Redis's nice, relative (beside wrk)")
    p.add_argument(
        "--fixed-admission", action="store_true", help="Varco's servers without adaptive shedding"
    )
    args = p.parse_args(argv)
    kinds = tuple(args.kinds or ("empty", "check", "logged", *(("base",) if args.baseline else ())))
    if "base" in kinds and args.baseline is None:
        p.error("server base needs --baseline DIR")
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
        pid = server.process.pid
        subprocess.run(["taskset", "-pc", "1", str(pid)], check=True, capture_output=True)
        os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + args.redis_nice)
        ports = {k: free_port() for k in kinds}
        procs = {
            k: start(
                k,
                ports[k],
                data,
                server.url,
                args.baseline if k == "base" else ROOT,
                args.fixed_admission,
            )
            for k in kinds
        }
        loads = args.connections
        sat: dict[tuple[str, int], list[dict[str, float]]] = {
            (k, c): [] for k in kinds for c in loads
        }
        pace: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        try:
            for k in kinds:  # warm-up
                wrk(ports[k], fast, 2, 32)
            for r in range(args.rounds):
                order = kinds[r % len(kinds) :] + kinds[: r % len(kinds)]
                for c in loads:
                    for k in order:
                        res = saturate(k, ports[k], procs[k].pid, fast, args.duration, c)
                        sat[k, c].append(res)
                        group = f"  {res['per_group']:6.1f}/group" if k in LOGGING else ""
                        print(
                            f"round {r + 1} c{c:<4} {k:7} {res['rps']:8.0f} req/s  p50 "
                            f"{res['p50_ms']:.2f} ms  p99 {res['p99_ms']:.2f} ms  CPU "
                            f"{res['cpu_us']:5.0f} µs/req{group}  non-2xx {res['non_2xx']:.0f}",
                            flush=True,
                        )
                for k in () if args.no_paced else order:
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
    report(args, kinds, sat, pace, logged)
    return 0


def report(
    args: argparse.Namespace,
    kinds: tuple[str, ...],
    sat: dict[tuple[str, int], list[dict[str, float]]],
    pace: dict[str, list[dict[str, float]]],
    logged: int,
) -> None:
    def med(runs: list[dict[str, float]], m: str) -> float:
        return statistics.median(x[m] for x in runs)

    print(
        f"\nmedians of {args.rounds} rounds, {args.permits:,} permits; servers on core 0, "
        "wrk and Redis on core 1"
    )
    for c in args.connections:
        print(
            f"\n{'c' + str(c):12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'÷ empty':>9}"
            f"{'CPU µs/req':>12}{'non-2xx':>9}{'per group':>11}"
        )
        for k in kinds:
            runs = sat[k, c]
            ratio = (
                f"{med(runs, 'rps') / med(sat['empty', c], 'rps'):>9.2f}"
                if "empty" in kinds
                else f"{'':>9}"
            )
            group = f"{med(runs, 'per_group'):>11.1f}" if k in LOGGING else ""
            print(
                f"{k:12}{med(runs, 'rps'):>10.0f}{med(runs, 'p50_ms'):>9.2f}"
                f"{med(runs, 'p99_ms'):>9.2f}{ratio}{med(runs, 'cpu_us'):>12.1f}"
                f"{sum(x['non_2xx'] for x in runs):>9.0f}{group}"
            )
        for a, b in (("logged", "empty"), ("logged", "base"), ("check", "empty")):
            if a in kinds and b in kinds:
                rps = [x["rps"] / y["rps"] for x, y in zip(sat[a, c], sat[b, c], strict=True)]
                cpu = [y["cpu_us"] / x["cpu_us"] for x, y in zip(sat[a, c], sat[b, c], strict=True)]
                print(
                    f"{a}/{b} per round: throughput {', '.join(f'{x:.2f}' for x in rps)}; "
                    f"by CPU/req {', '.join(f'{x:.2f}' for x in cpu)} (median "
                    f"{statistics.median(rps):.2f}, {statistics.median(cpu):.2f})"
                )
    if not args.no_paced:
        print(f"\n{'paced':12}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}")
        for k in kinds:
            print(
                f"{k:12}{med(pace[k], 'rps'):>10.0f}{med(pace[k], 'p50_ms'):>9.2f}"
                f"{med(pace[k], 'p99_ms'):>9.2f}"
            )
        if "logged" in kinds:
            print(
                f"acknowledgement p99 with durable logging at ~{med(pace['logged'], 'rps'):.0f}"
                f"/s: {med(pace['logged'], 'p99_ms'):.2f} ms (target <= 10 ms)"
            )
    print(f"transits in the Redis stream at the end: {logged:,}")


if __name__ == "__main__":
    sys.exit(main())
