"""The durable transit log's own CPU per transit, without HTTP: `Intake._record` (the record,
the group commit, the answer's transit id) against a real Redis (`appendfsync always`).

    .venv/bin/python -m bench.bench_log --concurrency 1 32 128 --rounds 5
    .venv/bin/python -m bench.bench_log --baseline /tmp/varco-main   # before/after a change

N tasks (`--concurrency`: the requests in flight, as connections are in bench_transits) each
record one new transit at a time, as a camera post does; reported per load: the process's CPU
time per transit (user + system: what the log costs the server's core), transits per group
commit (one Lua call, one fsync) and transits per second. Steadier than the HTTP benches: no
parser, no client on the same host, only the log's Python and its socket to Redis.

With `--baseline DIR` each round also runs the same measurement on another source tree (e.g.
`git archive main | tar -x -C DIR` plus the built `enforcement/core/_lookup*.so`), interleaved
with this one: the ratio per round is the change's effect. Each measurement is a child
process pinned to core 0 (Redis on core 1) importing `enforcement` from its tree; the child is
this file run as a script, so it needs nothing of the tree but `Intake._record`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


async def _measure(redis_url: str, concurrency: int, transits: int) -> dict[str, float]:
    """In the child: record `transits` new transits from `concurrency` tasks; the figures."""
    from enforcement.core.plates import normalise
    from enforcement.core.verdict import Verdict
    from enforcement.keys import Keys
    from enforcement.transits.intake import Intake
    from enforcement.transits.log import TransitLog
    from enforcement.transits.record import Transit

    spool = Path(tempfile.mkdtemp(prefix="varco-bench-log-"))
    tl = TransitLog(
        redis_url=redis_url,
        keys=Keys(f"bench{os.getpid()}"),
        spool_root=spool,
        spool_max_bytes=1 << 30,
        write_timeout_s=5,
        dedup_window_s=3600,
    )
    await tl.start()
    while not tl.redis_ok:
        await asyncio.sleep(0.02)
    intake = Intake.__new__(Intake)  # only what _record needs: no index, no rules
    intake.transit_log = tl
    gate = SimpleNamespace(code="PD-03", zone="ZTL")
    plate = normalise("AB123CD")
    run = f"{os.getpid()}-{time.time()}"
    per_task = max(1, transits // concurrency)

    async def camera(w: int, phase: str) -> None:
        for i in range(per_task):
            event = f"{run}-{phase}-{w}-{i}"
            t = Transit("cam-1", "PD-03", event, "AB123CD", plate, 1.8e9 + i, 0.92, None)
            v = Verdict("allowed", "permit", "AB123CD", ["P-1"], 7, None, event)
            await intake._record([t], [gate], [v], time.time())  # type: ignore[list-item]

    await asyncio.gather(*(camera(w, "warm") for w in range(concurrency)))
    groups, cpu, wall = tl.groups, time.process_time(), time.perf_counter()
    await asyncio.gather(*(camera(w, "run") for w in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    n = per_task * concurrency
    out = {"cpu_us": cpu / n * 1e6, "per_s": n / wall, "per_group": n / (tl.groups - groups)}
    await tl.stop()
    return out


def _child(argv: list[str]) -> None:
    import uvloop

    url, concurrency, transits = argv[0], int(argv[1]), int(argv[2])
    print(json.dumps(uvloop.run(_measure(url, concurrency, transits))))


def _run(tree: Path, url: str, concurrency: int, transits: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    cmd = ["taskset", "-c", "0", sys.executable, "-P", __file__, "--child", url]
    done = subprocess.run(
        [*cmd, str(concurrency), str(transits)], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"bench_log child ({tree}) failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 32, 128])
    p.add_argument("--transits", type=int, default=6000, help="per measurement (1: a tenth)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--baseline", type=Path, help="another source tree, measured alongside")
    args = p.parse_args(argv)
    from enforcement.replica.redis_server import EmbeddedRedis

    trees = {"this": ROOT, **({"base": args.baseline.resolve()} if args.baseline else {})}
    runs: dict[tuple[str, int], list[dict[str, float]]] = {
        (k, c): [] for k in trees for c in args.concurrency
    }
    with tempfile.TemporaryDirectory(prefix="varco-bench-log-") as tmp:
        server = EmbeddedRedis(Path(tmp) / "redis")
        server.start()
        assert server.process is not None
        subprocess.run(["taskset", "-pc", "1", str(server.process.pid)], capture_output=True)
        try:
            for r in range(args.rounds):
                for c in args.concurrency:
                    n = args.transits // 10 if c == 1 else args.transits
                    for k in list(trees)[r % len(trees) :] + list(trees)[: r % len(trees)]:
                        res = _run(trees[k], server.url, c, n)
                        runs[k, c].append(res)
                        print(
                            f"round {r + 1} c{c:<4} {k:5} {res['cpu_us']:7.1f} µs CPU/transit "
                            f"{res['per_group']:6.1f}/group {res['per_s']:8.0f}/s",
                            flush=True,
                        )
        finally:
            server.stop()
    report(args, trees, runs)
    return 0


def report(
    args: argparse.Namespace, trees: dict[str, Path], runs: dict[tuple[str, int], Any]
) -> None:
    print(f"\nmedians of {args.rounds} rounds; the log on core 0, Redis on core 1")
    print(f"{'load':8}{'tree':6}{'CPU µs/transit':>16}{'per group':>11}{'transits/s':>12}")
    for c in args.concurrency:
        for k in trees:
            rs = runs[k, c]
            print(
                f"{'c' + str(c):8}{k:6}{statistics.median(x['cpu_us'] for x in rs):>16.1f}"
                f"{statistics.median(x['per_group'] for x in rs):>11.1f}"
                f"{statistics.median(x['per_s'] for x in rs):>12.0f}"
            )
        if "base" in trees:
            pairs = zip(runs["this", c], runs["base", c], strict=True)
            ratios = [b["cpu_us"] / a["cpu_us"] for a, b in pairs]
            print(
                f"{'':8}base ÷ this, CPU per transit, per round: "
                f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f})"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _child(sys.argv[2:])
    else:
        sys.exit(main())
