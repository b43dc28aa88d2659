"""Fault tests of the transit log with real processes (deploy/topology.py: Redis, the loader,
a replica): Redis killed with SIGKILL several times during 100,000 transits, the service
killed with SIGKILL (once while Redis is away, so its spool holds the only copy), and Redis
away for 30 s. Cameras retry what was not acknowledged, with the same event ids, as real
ones do. Afterwards every acknowledged transit id is reconciled against the Redis stream and
the local spools: none lost, none twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis

from deploy.topology import Topology
from enforcement.keys import Keys
from enforcement.transits.record import DECODE_RECORD
from enforcement.transits.spool import all_frames
from varco.demo import DEMO_RESIDENT, DEMO_UNKNOWN

from ..support.common import DEMO_CONFIG, free_port

CAMERA = {"Authorization": "Bearer demo-camera"}
GATE = "PD-03"
DOWN_S = float(os.environ.get("VARCO_FAULT_REDIS_DOWN_S", "30"))


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    topo = Topology(DEMO_CONFIG, tmp_path / "data", [free_port()])
    try:
        topo.start(permits=2000)
        yield topo
    finally:
        topo.stop()


class Cameras:
    """Transits with unique event ids, each sent until acknowledged (retries keep the event id
    and capture time); records what was acknowledged, in order."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.acked: dict[str, str] = {}  # event id -> transit id
        self.order: list[str] = []  # transit ids in acknowledgement order
        self.retries = 0
        self._n = itertools.count()

    def make(self) -> dict[str, Any]:
        n = next(self._n)
        return {
            "event_id": f"ev-{n}",
            "camera": "cam-1",
            "gate": GATE,
            "plate": DEMO_RESIDENT if n % 2 else DEMO_UNKNOWN,
            "ts": dt.datetime.now(dt.UTC).isoformat(),
            "confidence": 0.95,
        }

    async def send(self, session: aiohttp.ClientSession, items: list[dict[str, Any]]) -> None:
        single = len(items) == 1
        path, body = (
            ("/v1/transits", items[0]) if single else ("/v1/transits/batch", {"transits": items})
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                async with session.post(
                    self.url + path,
                    json=body,
                    headers=CAMERA,
                    timeout=aiohttp.ClientTimeout(total=10),
                ) as r:
                    if r.status == 200:
                        reply = await r.json()
                        verdicts = [reply] if single else reply["results"]
                        for item, v in zip(items, verdicts, strict=True):
                            assert v["event_id"] == item["event_id"]
                            if item["event_id"] not in self.acked:
                                self.order.append(v["transit_id"])
                            else:  # a retry of an acknowledged event: the same id back
                                assert self.acked[item["event_id"]] == v["transit_id"]
                            self.acked[item["event_id"]] = v["transit_id"]
                        return
                    assert r.status == 503, (r.status, await r.text())  # never a 500
            except (TimeoutError, aiohttp.ClientError, ConnectionError):
                pass
            self.retries += 1
            assert time.monotonic() < deadline, "a transit was never acknowledged"
            await asyncio.sleep(0.05)

    async def run(self, total: int, batch: int, concurrency: int) -> None:
        queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        sent = 0
        while sent < total:
            size = 1 if (sent // batch) % 10 == 0 else min(batch, total - sent)  # some singles
            queue.put_nowait([self.make() for _ in range(size)])
            sent += size

        async def worker() -> None:
            async with aiohttp.ClientSession() as session:
                while not queue.empty():
                    await self.send(session, queue.get_nowait())

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def logged(topo: Topology) -> Counter[str]:
    """Transit ids in the Redis stream and in every local spool."""
    found: Counter[str] = Counter()
    r = redis.Redis.from_url(topo.env["REDIS_URL"])
    try:
        start = "-"
        while True:
            entries = r.xrange(Keys("varco").transits, start, "+", count=10_000)
            for _, fields in entries:
                found[DECODE_RECORD(fields[b"r"]).id] += 1
            if len(entries) < 10_000:
                break
            start = "(" + entries[-1][0].decode()
    finally:
        r.close()
    for frame in all_frames(topo.data_dir / "spool"):
        found[DECODE_RECORD(frame).id] += 1
    return found


def metric(topo: Topology, name: str) -> float:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{topo.replica_port(1)}/metrics") as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def stream_order(topo: Topology) -> list[str]:
    r = redis.Redis.from_url(topo.env["REDIS_URL"])
    try:
        return [DECODE_RECORD(f[b"r"]).id for _, f in r.xrange(Keys("varco").transits)]
    finally:
        r.close()


def reconcile(cams: Cameras, topo: Topology) -> None:
    found = logged(topo)
    acked = set(cams.acked.values())
    lost = acked - set(found)
    twice = {i: n for i, n in found.items() if n > 1}
    assert not lost, f"{len(lost)} acknowledged transits lost"
    assert not twice, f"{len(twice)} transits logged more than once"
    assert len(acked) == len(cams.acked)  # one id per event


def drained(topo: Topology, timeout_s: float = 60) -> None:
    """Wait until the replica writes to Redis again (its spool replayed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = topo.readiness(1)
        if got is not None and got[1].get("transit_log", {}).get("target") == "redis":
            return
        assert time.monotonic() < deadline, f"spool not drained: {got}"
        time.sleep(0.1)


async def _kill_redis_repeatedly(topo: Topology, cams: Cameras, total: int, times: int) -> int:
    kills = 0
    for k in range(1, times + 1):
        while len(cams.acked) < total * k // (times + 1):
            await asyncio.sleep(0.01)
        topo.kill_redis()
        kills += 1
        await asyncio.sleep(1.0)
        await asyncio.to_thread(topo.start_redis)
    return kills


def test_redis_killed_repeatedly_during_100k_transits(topology: Topology) -> None:
    topo, total = topology, 100_000
    cams = Cameras(topo.replica_port(1))

    async def scenario() -> int:
        load = asyncio.create_task(cams.run(total, batch=100, concurrency=4))
        kills = await _kill_redis_repeatedly(topo, cams, total, times=3)
        await load
        return kills

    assert asyncio.run(scenario()) == 3
    assert len(cams.acked) == total
    drained(topo)
    reconcile(cams, topo)
    assert sum(logged(topo).values()) == total
    # The kills were felt (else the test proves nothing): records went to the spool and back.
    assert metric(topo, "varco_transits_spooled_total") > 0
    assert metric(topo, "varco_transits_replayed_total") == metric(
        topo, "varco_transits_spooled_total"
    )


def test_service_killed_including_with_a_full_spool(topology: Topology) -> None:
    topo, total = topology, 20_000
    cams = Cameras(topo.replica_port(1))

    async def scenario() -> None:
        load = asyncio.create_task(cams.run(total, batch=50, concurrency=4))
        while len(cams.acked) < total // 4:
            await asyncio.sleep(0.01)
        topo.kill("replica-1")  # SIGKILL, Redis up
        topo.start_replica(1)
        while len(cams.acked) < total // 2:
            await asyncio.sleep(0.01)
        topo.kill_redis()  # now the spool holds the only copy of what is acknowledged ...
        spooled_before = len(cams.acked)
        while len(cams.acked) < spooled_before + 2000:
            await asyncio.sleep(0.01)
        topo.kill("replica-1")  # ... and the service dies with it
        assert sum(1 for _ in all_frames(topo.data_dir / "spool")) > 0
        await asyncio.to_thread(topo.start_redis)
        topo.start_replica(1)  # claims the dead one's spool and replays it
        await load

    asyncio.run(scenario())
    assert len(cams.acked) == total
    drained(topo)
    reconcile(cams, topo)
    assert sum(logged(topo).values()) == total
    assert sum(1 for _ in all_frames(topo.data_dir / "spool")) == 0


def test_redis_away_30_s_then_spool_drained_in_order(topology: Topology) -> None:
    topo = topology
    cams = Cameras(topo.replica_port(1))

    async def scenario() -> None:
        stop = asyncio.Event()

        async def steady() -> None:  # one camera, one transit at a time: a total order
            async with aiohttp.ClientSession() as session:
                while not stop.is_set():
                    await cams.send(session, [cams.make()])
                    await asyncio.sleep(0.005)

        load = asyncio.create_task(steady())
        await asyncio.sleep(2)
        topo.kill_redis()
        await asyncio.sleep(DOWN_S)
        during = len(cams.acked)
        await asyncio.to_thread(topo.start_redis)
        await asyncio.sleep(3)
        stop.set()
        await load
        assert during > 100  # acknowledged while Redis was away

    asyncio.run(scenario())
    drained(topo)
    reconcile(cams, topo)
    assert sum(1 for _ in all_frames(topo.data_dir / "spool")) == 0
    assert stream_order(topo) == cams.order  # replayed in order, new ones after
