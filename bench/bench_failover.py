"""Issue → enforced at every replica across loader kills (issue 22), on the loopback topology
(deploy/topology.py: Redis, `varco watch`, two replicas) with a second `varco watch` standing by.

Permits are issued through the admin API at a steady pace (`--interval`, alternating
replicas) while transits load both replicas (every answer checked). `--kills` times, evenly
spread, the loader holding the lease is killed with SIGKILL and started again a second later
(as a supervisor would), so it becomes the standby for the next kill. Each permit is timed from
sending its request until both replicas' /readyz report its revision (polled every 3 ms);
permits issued while no loader was active wait for the takeover, and count.

    .venv/bin/python -m bench.bench_failover --permits-db 200000 --issue 1000 --kills 5
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aredis

from deploy.topology import DEFAULT_CONFIG, Topology
from enforcement.keys import Keys

from .bench_http import free_port
from .bench_live import POLL_S, Load, Replica, issue, pct

LOADERS = ("loader", "loader-2")


async def holder(r: aredis.Redis, keys: Keys) -> tuple[int, int] | None:
    """(epoch, pid) of the lease holder: its token is `epoch host:pid`."""
    token: Any = await r.get(keys.lease)
    if token is None:
        return None
    epoch, name = token.decode().split(" ", 1)
    return int(epoch), int(name.rsplit(":", 1)[1])


async def wait_standing_by(topo: Topology, name: str, timeout_s: float = 60) -> None:
    path = topo.log_dir / f"{name}.log"
    deadline = time.monotonic() + timeout_s
    while "standing by" not in (path.read_text() if path.exists() else ""):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not stand by within {timeout_s:.0f} s; see {path}")
        await asyncio.sleep(0.05)


async def kill_active(topo: Topology, r: aredis.Redis, keys: Keys) -> dict[str, Any]:
    """SIGKILL the loader holding the lease; time until another holds it; restart the killed
    one a second later as the new standby."""
    before = await holder(r, keys)
    assert before is not None, "no loader holds the lease"
    name = next(n for n in LOADERS if n in topo.procs and topo.procs[n].pid == before[1])
    t_kill = time.monotonic()
    topo.kill(name)
    while (now := await holder(r, keys)) is None or now[0] == before[0]:
        await asyncio.sleep(0.002)
    takeover = time.monotonic() - t_kill
    await asyncio.sleep(max(0.0, 1.0 - takeover))
    (topo.log_dir / f"{name}.log").write_bytes(b"")  # so "standing by" is this run's
    topo.start_loader(name)
    return {"killed": name, "at": t_kill, "takeover_s": takeover}


async def measure(
    topo: Topology, n_issue: int, interval: float, kills: int, connections: int
) -> dict[str, Any]:
    bases = [f"http://127.0.0.1:{topo.replica_port(i)}" for i in range(1, topo.replicas + 1)]
    replicas = [Replica(b) for b in bases]
    load = Load(bases)
    stop = asyncio.Event()
    keys = Keys()
    r = aredis.Redis.from_url(topo.env["REDIS_URL"])
    kill_at = {n_issue * (k + 1) // (kills + 1) for k in range(kills)}
    sent: list[tuple[float, int, str]] = []  # (sent at, revision, plate)
    killed: list[dict[str, Any]] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(rep.poll(session, stop)) for rep in replicas]
        tasks += [asyncio.create_task(load.run(session, k, stop)) for k in range(connections)]

        async def one(n: int) -> None:
            t0 = time.monotonic()
            plate, revision = await issue(session, bases[n % len(bases)], n)
            sent.append((t0, revision, plate))

        try:
            await wait_standing_by(topo, "loader-2")
            await asyncio.sleep(1)
            issuing: list[asyncio.Task[None]] = []
            kill_tasks: list[asyncio.Task[dict[str, Any]]] = []
            start = time.monotonic()
            for n in range(n_issue):
                await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
                if n in kill_at:
                    if kill_tasks:  # the previous victim must be standing by again
                        killed.append(await kill_tasks[-1])
                        await wait_standing_by(topo, killed[-1]["killed"])
                    kill_tasks.append(asyncio.create_task(kill_active(topo, r, keys)))
                    print(f"  kill -9 of the active loader at permit {n}", file=sys.stderr)
                issuing.append(asyncio.create_task(one(n)))
            await asyncio.gather(*issuing)
            killed += [await t for t in kill_tasks[len(killed) :]]
            last = max(rev for _, rev, _ in sent)
            deadline = time.monotonic() + 60
            while any(rep.revision < last for rep in replicas):
                if time.monotonic() > deadline:
                    raise RuntimeError("the replicas did not reach the last permit in 60 s")
                await asyncio.sleep(POLL_S)
            for _, _, plate in sent:
                load.enforced.append(plate)
            await asyncio.sleep(1)  # the load checks issued permits are allowed everywhere
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await r.aclose()
    latencies = []
    for t0, revision, _ in sorted(sent):
        at = [rep.reached(revision) for rep in replicas]
        assert None not in at
        latencies.append(max(a for a in at if a is not None) - t0)
    return {
        "issued": len(latencies),
        "interval_s": interval,
        "kills": [{k: v for k, v in x.items() if k != "at"} for x in killed],
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "over_1s": sum(x > 1.0 for x in latencies),
        "transits": load.sent,
        "failed_total": len(load.failed),
        "examples": load.failed[:5],
        "latencies_ms": [round(x * 1000, 1) for x in latencies],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_failover", description=__doc__)
    p.add_argument("--permits-db", type=int, default=200_000)
    p.add_argument("--issue", type=int, default=1000)
    p.add_argument("--interval", type=float, default=0.05, help="seconds between permits")
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--connections", type=int, default=2, help="transit load connections")
    p.add_argument("--json", type=Path, help="write the raw result (every latency) here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="varco-failover-") as tmp:
        topo = Topology(DEFAULT_CONFIG, Path(tmp) / "data", [free_port(), free_port()])
        try:
            print(f"starting the topology with {args.permits_db} permits...", file=sys.stderr)
            topo.start(args.permits_db)
            topo.start_loader("loader-2")
            result = asyncio.run(
                measure(topo, args.issue, args.interval, args.kills, args.connections)
            )
        finally:
            topo.stop()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    result = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "command": "python -m bench.bench_failover " + " ".join(argv or sys.argv[1:]),
        **result,
    }
    if args.json is not None:
        # Every latency on one line, the rest one field a line.
        latencies = result.pop("latencies_ms")
        text = json.dumps(result, indent=1)[:-2] + ',\n "latencies_ms": '
        args.json.write_text(text + json.dumps(latencies) + "\n}\n")
    takeovers = ", ".join(f"{k['takeover_s'] * 1000:.0f}" for k in result["kills"])
    print(f"""
| figure | value |
|---|---:|
| permits issued, one every {args.interval * 1000:.0f} ms | {result["issued"]} |
| loader kill -9 (lease holder), takeover ms each | {len(result["kills"])}: {takeovers} |
| issue → enforced at both replicas, p50 | {result["p50_ms"]:.0f} ms |
| issue → enforced at both replicas, p99 | {result["p99_ms"]:.0f} ms |
| issue → enforced at both replicas, max | {result["max_ms"]:.0f} ms |
| permits over 1 s | {result["over_1s"]} |
| failed or wrong answers in {result["transits"]} transits | {result["failed_total"]} |
""")
    if result["examples"]:
        print("examples of failures:", *result["examples"], sep="\n  ")
    return 0 if result["failed_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
