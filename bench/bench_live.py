"""Live permits under load (issue 3's figures), on the loopback topology (deploy/topology.py):

1. issue -> enforced at every replica: permits issued one after another through the admin
   API while transits load both replicas; for each, the time from sending the request until
   every replica's index has its revision (polled on /readyz every few ms), p50/p99/max;
   a sample is also checked through a transit verdict;
2. snapshot swaps under load: a permit and a snapshot request, `--swaps` times; every
   transit answer of the load is checked (resident allowed, unknown pending, issued permits
   allowed), so any failed or wrong answer during a swap is counted.

    .venv/bin/python -m bench.bench_live --permits-db 200000 --issue 1000 --swaps 10
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import redis

from deploy.topology import DEFAULT_CONFIG, Topology
from enforcement.keys import Keys
from varco.demo import DEMO_RESIDENT, DEMO_UNKNOWN

from .bench_http import free_port

ADMIN = {"Authorization": "Bearer demo-admin"}
CAMERA = {"Authorization": "Bearer demo-camera"}
GATE = "PD-03"
POLL_S = 0.003


class Replica:
    """Index revision of one replica over time, polled on /readyz."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.revision, self.snapshot_revision, self.swaps = -1, -1, 0
        self.seen: list[tuple[float, int]] = []  # (monotonic time, revision) at each change

    async def poll(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        while not stop.is_set():
            async with session.get(self.base + "/readyz") as r:
                info = await r.json()
            now = time.monotonic()
            if info.get("index_revision", -1) != self.revision:
                self.revision = info["index_revision"]
                self.seen.append((now, self.revision))
            self.snapshot_revision = info.get("snapshot_revision", -1)
            self.swaps = info["snapshot_swaps"]
            await asyncio.sleep(POLL_S)

    def reached(self, revision: int) -> float | None:
        for at, rev in self.seen:
            if rev >= revision:
                return at
        return None


class Load:
    """Transits on `connections` connections spread over the replicas; every answer checked."""

    def __init__(self, bases: list[str]) -> None:
        self.bases = bases
        self.expected: dict[str, str] = {DEMO_RESIDENT: "allowed", DEMO_UNKNOWN: "pending"}
        self.enforced: list[str] = []  # plates whose permit every replica has: allowed
        self.sent = 0
        self.failed: list[str] = []

    async def run(self, session: aiohttp.ClientSession, k: int, stop: asyncio.Event) -> None:
        rng = random.Random(k)
        base = self.bases[k % len(self.bases)]
        while not stop.is_set():
            if self.enforced and rng.random() < 0.3:
                plate = rng.choice(self.enforced)
                want = "allowed"
            else:
                plate = rng.choice((DEMO_RESIDENT, DEMO_UNKNOWN))
                want = self.expected[plate]
            self.sent += 1
            body = {
                "event_id": f"load-{k}-{self.sent}",
                "camera": "cam-1",
                "gate": GATE,
                "plate": plate,
                "ts": dt.datetime.now(dt.UTC).isoformat(),
                "confidence": 0.95,
            }
            try:
                async with session.post(base + "/v1/transits", json=body, headers=CAMERA) as r:
                    reply = await r.json()
                    if r.status != 200 or reply["verdict"] != want:
                        self.failed.append(f"{plate}: {r.status} {reply} (want {want})")
            except aiohttp.ClientError as exc:
                self.failed.append(f"{plate}: {type(exc).__name__}")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 10) - 1]


async def issue(session: aiohttp.ClientSession, base: str, n: int) -> tuple[str, int]:
    plate = f"XZ{n % 1000:03d}{'ABCDEFGHJKLMNPRSTVWXYZ'[n // 1000 % 22]}A"  # Italian format
    start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    body = {
        "permit_id": f"BENCH-{n}",
        "type": "TEMP",
        "valid_from": start.isoformat(),
        "valid_to": (start + dt.timedelta(days=2)).isoformat(),
        "plates": [{"plate": plate}],
    }
    async with session.post(base + "/v1/permits", json=body, headers=ADMIN) as r:
        reply = await r.json()
        if r.status != 201:
            raise RuntimeError(f"issue failed: {r.status} {reply}")
    return plate, int(reply["revision"])


async def measure(topo: Topology, n_issue: int, swaps: int, connections: int) -> dict[str, Any]:
    bases = [f"http://127.0.0.1:{topo.replica_port(i)}" for i in range(1, topo.replicas + 1)]
    replicas = [Replica(b) for b in bases]
    load = Load(bases)
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(r.poll(session, stop)) for r in replicas]
        tasks += [asyncio.create_task(load.run(session, k, stop)) for k in range(connections)]
        try:
            await asyncio.sleep(1)
            # 1. issue -> enforced everywhere
            latencies: list[float] = []
            t_start, sent0 = time.monotonic(), load.sent
            for n in range(n_issue):
                t0 = time.monotonic()
                plate, revision = await issue(session, bases[n % len(bases)], n)
                while (at := [r.reached(revision) for r in replicas]) and None in at:
                    await asyncio.sleep(POLL_S)
                latencies.append(max(a for a in at if a is not None) - t0)
                load.enforced.append(plate)
                if n % 100 == 0:
                    print(
                        f"  issued {n + 1}/{n_issue}, last {latencies[-1] * 1000:.0f} ms",
                        file=sys.stderr,
                    )
            load_rate = (load.sent - sent0) / (time.monotonic() - t_start)
            # 2. snapshot swaps under load
            r = redis.Redis.from_url(topo.env["REDIS_URL"])
            swaps0 = [rep.swaps for rep in replicas]
            failed_before = len(load.failed)
            for k in range(swaps):
                _, revision = await issue(session, bases[0], n_issue + k)
                r.set(Keys().wanted, b"1")
                deadline = time.monotonic() + 60
                while any(rep.snapshot_revision < revision for rep in replicas):
                    if time.monotonic() > deadline:
                        raise RuntimeError("a replica did not swap in the new snapshot in 60 s")
                    await asyncio.sleep(0.01)
                print(f"  swap {k + 1}/{swaps} at revision {revision}", file=sys.stderr)
            await asyncio.sleep(1)
            r.close()
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "issued": n_issue,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "max_ms": max(latencies) * 1000,
        "load_per_s": load_rate,
        "transits": load.sent,
        "failed_total": len(load.failed),
        "swaps": [rep.swaps - s for rep, s in zip(replicas, swaps0, strict=True)],
        "failed_during_swaps": len(load.failed) - failed_before,
        "examples": load.failed[:5],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.bench_live", description=__doc__)
    p.add_argument("--permits-db", type=int, default=200_000)
    p.add_argument("--issue", type=int, default=1000)
    p.add_argument("--swaps", type=int, default=10)
    p.add_argument("--connections", type=int, default=4)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="varco-live-") as tmp:
        topo = Topology(DEFAULT_CONFIG, Path(tmp) / "data", [free_port(), free_port()])
        try:
            print(f"starting the topology with {args.permits_db} permits...", file=sys.stderr)
            topo.start(args.permits_db)
            result = asyncio.run(measure(topo, args.issue, args.swaps, args.connections))
        finally:
            topo.stop()
    print(f"""
| figure | value |
|---|---:|
| permits issued under load | {result["issued"]} |
| issue → enforced at both replicas, p50 | {result["p50_ms"]:.0f} ms |
| issue → enforced at both replicas, p99 | {result["p99_ms"]:.0f} ms |
| issue → enforced at both replicas, max | {result["max_ms"]:.0f} ms |
| transit load meanwhile (checked answers) | {result["load_per_s"]:.0f}/s |
| snapshot swaps per replica | {", ".join(map(str, result["swaps"]))} |
| failed or wrong answers during the swaps | {result["failed_during_swaps"]} |
| failed or wrong answers in all {result["transits"]} transits | {result["failed_total"]} |
""")
    if result["examples"]:
        print("examples of failures:", *result["examples"], sep="\n  ")
    return 0 if result["failed_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
