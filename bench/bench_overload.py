"""Overload: what admission control (enforcement/http/admission.py) keeps for the requests it
admits when more is offered than the service can serve.

    .venv/bin/python -m bench.bench_overload --permits 1000000 --duration 10 --rounds 3

The real service (bench/varco_server.py: `varco serve`'s app, the durable transit log on a
Redis of its own) and its Redis pinned to core 0 (--redis-core 1: beside the generator); the
load generator on core 1 (~13 µs a request: its own CPU is reported, as near a core's worth
its latencies would be its own).
Each front (--front) is measured in turn: `direct`, the load offered to the server itself, and
`nginx`, through the OS's nginx on deploy/nginx.conf (its max_conns per replica, its own 503
past it; `nginx:N`, max_conns N), pinned to core 1 beside the generator (a proxy is not the
replica's CPU). Per round:

1. capacity, the replica's, the same for every front: a closed loop straight to it on
   --connections (default 64) keep-alive connections, each posting its next transit when
   answered, on a server with a fixed limit of 256: the capacity (transits/s), and the
   latency at it;
2. per variant (--target-latency-ms: several take turns in each round, each on a fresh
   server; 0 is the fixed limit), open loops (bench/openloop.py) at ¼ (unloaded, the
   reference), 1×, 3× and 10× that capacity: transits arrive at a fixed rate whatever the
   answers, on up to --pool connections (cameras do not slow down because the service does).
   Latency runs from each transit's due time. Then a closed loop on --saturated connections
   (32): busy but not overloaded, so whatever is refused there is refused needlessly (unless
   nginx's max_conns is below 32: then it is an overload of its own).

Reported per load, as medians over rounds and as ratios to the unloaded run of the same
round: admitted (200) p50 and p99, the share answered 503, answers that never came, the
server's RSS, its shed counters and in-flight limit (/metrics), the CPU of server, Redis,
generator and nginx. Target: admitted p99 at 3× ≤ 2 × unloaded p99. Every 200 is checked to
answer its own transit (wrong answers: must be 0).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.nginx import Nginx
from enforcement.replica.redis_server import EmbeddedRedis

from . import openloop
from .bench_http import free_port, launch, prepare
from .processes import cpu_s, rollup

ROOT = Path(__file__).resolve().parent.parent
LOADS = (1.0, 3.0, 10.0)
# The capacity run's fixed limit, whatever --max-in-flight the variants get: more than its
# closed loop's connections, so the loop is never refused (a 503 would spin it).
CAPACITY_SLOTS = 256
REDIS_PID = [0]


def generate(port: int, plates: str, args: argparse.Namespace, *load: str) -> dict[str, Any]:
    """One run of the load generator, pinned to core 1."""
    return openloop.run(
        port,
        *("--plates", plates, "--duration", str(args.duration), "--warmup", str(args.warmup)),
        *("--connections", str(args.pool), *load),
    )


def shed_counts(port: int) -> dict[str, int]:
    """The server's 503s by reason, and its transit log's group commits (`groups`)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    out = {
        m[1]: int(m[2])
        for m in re.finditer(r'^varco_http_shed_total\{reason="(\w+)"\} (\d+)$', text, re.M)
    }
    groups = re.search(r"^varco_transit_log_groups_total (\d+)", text, re.M)
    out["groups"] = int(groups[1]) if groups else 0
    limit = re.search(r"^varco_http_in_flight_limit (\d+)", text, re.M)
    out["limit"] = int(limit[1]) if limit else 0
    return out


def measure(
    name: str, served: Served, plates: str, args: argparse.Namespace, *load: str
) -> dict[str, Any]:
    """One load offered to `served`."""
    port, pid, proxy = served.port, served.proc.pid, served.proxy_pid
    before, cpu0, rcpu0 = shed_counts(port), cpu_s(pid), cpu_s(REDIS_PID[0])
    pcpu0 = cpu_s(proxy) if proxy else 0.0
    res = generate(served.offered, plates, args, *load)
    after = shed_counts(port)
    res["name"] = name
    res["server_cpu_s"] = round(cpu_s(pid) - cpu0, 2)
    res["redis_cpu_s"] = round(cpu_s(REDIS_PID[0]) - rcpu0, 2)
    res["proxy_cpu_s"] = round(cpu_s(proxy) - pcpu0, 2) if proxy else 0.0
    res["server_rss_mb"] = round(rollup(pid)["Rss"] / 2**20, 1)
    res["shed_by_reason"] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    res["shed_by_reason"]["limit"] = after["limit"]  # the in-flight limit at the end
    total = res["submitted"] or 1
    res["shed_share"] = round(res["status"].get("503", 0) / total, 4)
    res["unanswered_share"] = round((res["unanswered"] + res["lost"]) / total, 4)
    print(
        f"  {name:9} offered {res['submitted_rps']:8.0f}/s  200s {res['ok_rps']:7.0f}/s  "
        f"p50 {res['ok_p50_ms']:8.2f} ms  p99 {res['ok_p99_ms']:8.2f} ms  shed "
        f"{res['shed_share']:6.1%}  unanswered {res['unanswered_share']:6.1%}  wrong "
        f"{res['wrong']}  cpu {res['server_cpu_s']} s (Redis {res['redis_cpu_s']}, generator "
        f"{res['generator_cpu_s']}, nginx {res['proxy_cpu_s']})  RSS {res['server_rss_mb']} MB  answers {res['status']}  "
        f"server's 503s {res['shed_by_reason']}",
        flush=True,
    )
    return res


def start_server(
    data: Path,
    redis_url: str,
    args: argparse.Namespace,
    target: float | None,
    max_in_flight: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = dict(os.environ, VARCO_DATA_DIR=str(data), PYTHONPATH=str(ROOT), REDIS_URL="off")
    cmd = [sys.executable, "-m", "bench.varco_server", str(port), "--redis", redis_url]
    if args.no_log:
        cmd.append("--no-log")
    if max_in_flight is not None:
        cmd += ["--max-in-flight", str(max_in_flight)]
    if args.queue_wait_ms is not None:
        cmd += ["--queue-wait-ms", str(args.queue_wait_ms)]
    if target is not None:
        cmd += ["--target-latency-ms", str(target)]
    return launch("varco", cmd, env, port, "readyz"), port


def summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Medians over rounds of each load's figures and of its ratios to its round's unloaded."""
    out: dict[str, dict[str, float]] = {}
    for name in rounds[0]:
        rows = [r[name] for r in rounds]
        base = [r["unloaded"] for r in rounds]

        def med(values: list[float]) -> float:
            return round(statistics.median(values), 3)

        out[name] = {
            "rps_offered": med([x["submitted_rps"] for x in rows]),
            "rps_admitted": med([x["ok_rps"] for x in rows]),
            "p50_ms": med([x["ok_p50_ms"] for x in rows]),
            "p99_ms": med([x["ok_p99_ms"] for x in rows]),
            "p50_ratio": med(
                [x["ok_p50_ms"] / b["ok_p50_ms"] for x, b in zip(rows, base, strict=True)]
            ),
            "p99_ratio": med(
                [x["ok_p99_ms"] / b["ok_p99_ms"] for x, b in zip(rows, base, strict=True)]
            ),
            "shed_share": med([x["shed_share"] for x in rows]),
            "unanswered_share": med([x["unanswered_share"] for x in rows]),
            "rss_mb": med([x["server_rss_mb"] for x in rows]),
            "rss_ratio": med(
                [x["server_rss_mb"] / b["server_rss_mb"] for x, b in zip(rows, base, strict=True)]
            ),
            "wrong": sum(x["wrong"] for x in rows),
        }
    return out


def label(target: float | None, front: str = "direct") -> str:
    if target is None:
        name = "config"
    else:
        name = "fixed limit" if target == 0 else f"adaptive, target {target:g} ms"
    return name if front == "direct" else f"{name}, through {front}"


def _front(text: str) -> str:
    if text in ("direct", "nginx") or re.fullmatch(r"nginx:[1-9]\d*", text):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: direct, nginx or nginx:N")


@dataclass
class Served:
    """A fresh server for one variant, maybe behind nginx: where to offer the load
    (`offered`), where to read the server's counters (`port`), whose CPU to count."""

    proc: subprocess.Popen[bytes]
    port: int
    offered: int
    proxy_pid: int = 0  # nginx's worker


@contextlib.contextmanager
def serving(
    data: Path,
    redis_url: str,
    args: argparse.Namespace,
    target: float | None,
    slots: int | None,
    front: str,
) -> Iterator[Served]:
    proc, port = start_server(data, redis_url, args, target, slots)
    nginx = None
    try:
        served = Served(proc, port, port)
        if front.startswith("nginx"):
            # The OS's nginx on deploy/nginx.conf (its max_conns, its 503) on the generator's
            # core: a proxy is another machine's CPU, not the replica's. `nginx:N`: the same
            # with max_conns=N.
            nginx = Nginx(free_port(), [port], data / "nginx-access.log")
            if ":" in front:
                conf = nginx.conf.read_text()
                nginx.conf.write_text(re.sub(r"max_conns=\d+", f"max_conns={front[6:]}", conf))
            with (data / "nginx.log").open("ab") as log:
                nginx.proc = subprocess.Popen(
                    ["taskset", "-c", "1", *nginx.command()], stdout=log, stderr=log
                )
            nginx.wait_listening()
            children = Path(f"/proc/{nginx.proc.pid}/task/{nginx.proc.pid}/children")
            served.offered = nginx.port
            served.proxy_pid = int(children.read_text().split()[0])
        yield served
    finally:
        if nginx is not None and nginx.proc is not None:
            nginx.proc.terminate()
            nginx.proc.wait(timeout=10)
            nginx.cleanup()
        proc.terminate()
        proc.wait(timeout=10)


def run_capacity(
    r: int, front: str, data: Path, redis_url: str, plates: str, args: argparse.Namespace
) -> dict[str, Any]:
    """The round's capacity: a closed loop on a server with a fixed limit (an adaptive one, or
    nginx's max_conns below 64, would shed the loop's own queue and the 503s would spin it)."""
    with serving(data, redis_url, args, 0.0, CAPACITY_SLOTS, front) as served:
        print(f"round {r + 1}, {front}", flush=True)
        return measure("capacity", served, plates, args, "--closed", str(args.connections))


def run_round(
    capacity: dict[str, Any],
    target: float | None,
    front: str,
    data: Path,
    redis_url: str,
    plates: str,
    args: argparse.Namespace,
) -> dict[str, dict[str, Any]]:
    """The round's open loops for one variant, on a fresh server (its RSS and counters start
    from the same place), straight to it or through nginx (`front`)."""
    with serving(data, redis_url, args, target, args.max_in_flight, front) as served:
        print(f" {label(target, front)}", flush=True)
        runs = {"capacity": capacity}
        rps = capacity["ok_rps"]
        runs["unloaded"] = measure(
            "unloaded", served, plates, args, "--rate", str(rps * args.light)
        )
        for x in args.loads:
            runs[f"{x:g}x"] = measure(f"{x:g}x", served, plates, args, "--rate", str(rps * x))
        if args.saturated:
            # Busy, not overloaded: a closed loop never has more in flight than its
            # connections, so what admission refuses here it refuses needlessly.
            closed = ("--closed", str(args.saturated))
            runs["saturated"] = measure("saturated", served, plates, args, *closed)
        return runs


def print_table(name: str, table: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"\n{name}: medians of {args.rounds} rounds, {args.permits:,} permits; server on core "
        f"0, Redis on core {args.redis_core}, generator on core 1; ratios to the unloaded run "
        "of the same round"
    )
    print(
        f"{'load':10}{'offered/s':>10}{'200s/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'p50 ×':>7}"
        f"{'p99 ×':>7}{'shed':>7}{'no answer':>10}{'RSS MB':>8}{'RSS ×':>7}{'wrong':>6}"
    )
    for load, row in table.items():
        print(
            f"{load:10}{row['rps_offered']:>10.0f}{row['rps_admitted']:>9.0f}"
            f"{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{row['p50_ratio']:>7.2f}"
            f"{row['p99_ratio']:>7.2f}{row['shed_share']:>7.1%}{row['unanswered_share']:>10.1%}"
            f"{row['rss_mb']:>8.1f}{row['rss_ratio']:>7.2f}{row['wrong']:>6.0f}"
        )
    if "3x" in table:
        ok = table["3x"]["p99_ratio"] <= 2.0
        print(
            f"admitted p99 at 3x: {table['3x']['p99_ratio']:.2f}x unloaded (target <= 2): "
            f"{'met' if ok else 'not met'}"
        )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--permits", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--connections", type=int, default=64, help="the capacity closed loop")
    p.add_argument("--pool", type=int, default=900, help="open loop: connections at most")
    p.add_argument(
        "--saturated",
        type=int,
        default=32,
        help="per variant, also a closed loop on N connections (its shed share: needless "
        "refusals); 0: none",
    )
    p.add_argument("--light", type=float, default=0.25, help="the unloaded run, × capacity")
    p.add_argument("--loads", type=float, nargs="+", default=list(LOADS))
    p.add_argument("--max-in-flight", type=int, help="server.max_in_flight (default: config)")
    p.add_argument("--queue-wait-ms", type=float, help="server.max_queue_wait_ms")
    p.add_argument(
        "--target-latency-ms",
        type=float,
        nargs="+",
        help="server.target_latency_ms (0: a fixed limit); several: each round runs each",
    )
    p.add_argument("--redis-nice", type=int, default=0, help="Redis's nice, relative")
    p.add_argument("--redis-core", type=int, default=0, help="Redis's core (1: the generator's)")
    p.add_argument("--no-log", action="store_true", help="judge without the transit log")
    p.add_argument(
        "--front",
        nargs="+",
        type=_front,
        default=["direct", "nginx"],
        help="offer the load to the server itself (direct), through the OS's nginx on "
        "deploy/nginx.conf pinned to the generator's core (nginx; nginx:N: max_conns=N), or each",
    )
    p.add_argument("--json", type=Path, help="write every run and the summary here")
    args = p.parse_args(argv)
    variants = [
        (v, f) for f in args.front for v in list[float | None](args.target_latency_ms or [None])
    ]
    rounds: dict[str, list[dict[str, dict[str, Any]]]] = {label(*v): [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="varco-bench-") as tmp:
        data = Path(tmp)
        print(f"preparing a snapshot of {args.permits:,} permits ...", flush=True)
        permitted, unknown = prepare(data, args.permits)
        plates = ",".join(permitted[:400] + unknown[:100])
        redis = EmbeddedRedis(data / "redis")
        redis.start()
        assert redis.process is not None
        REDIS_PID[0] = pid = redis.process.pid
        pin = ["taskset", "-pc", str(args.redis_core), str(pid)]  # core 0 unless asked
        subprocess.run(pin, check=True, capture_output=True)
        os.setpriority(os.PRIO_PROCESS, pid, os.getpriority(os.PRIO_PROCESS, pid) + args.redis_nice)
        try:
            for r in range(args.rounds):
                # Variants take turns within a round on the same capacity (offered rates), so
                # the host's noise falls on each alike.
                capacity = run_capacity(r, "direct", data, redis.url, plates, args)
                for v, f in variants:
                    runs = run_round(capacity, v, f, data, redis.url, plates, args)
                    rounds[label(v, f)].append(runs)
        finally:
            redis.stop()
    tables = {name: summary(rs) for name, rs in rounds.items()}
    for name, table in tables.items():
        print_table(name, table, args)
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "args": vars(args) | {"json": str(args.json)},
                    "rounds": rounds,
                    "summary": tables,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
