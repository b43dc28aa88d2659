"""Fault tests with real processes: the loopback topology (deploy/topology.py: Redis, the
loader daemon, two replicas, nginx on deploy/nginx.conf in front), under a steady transit load, while Redis is killed
and restarted, Redis is absent when a replica starts, a replica is killed and restarted and
the loader is killed in the middle of publishing a snapshot.

After each fault every replica converges to the permit database's revision and enforces the
permits issued meanwhile; throughout, the load sees no failed and no wrong answer, and no
replica ever refuses (or serves) a partial snapshot."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis

from deploy.topology import Topology
from enforcement.keys import Keys
from loader.sqlite import PermitDB
from varco.demo import DEMO_RESIDENT, DEMO_UNKNOWN

from ..support.common import DEMO_CONFIG, free_port
from ..support.deploy import needs_nginx
from ..support.loaders import issue

ADMIN = {"Authorization": "Bearer demo-admin", "Content-Type": "application/json"}
CAMERA = {"Authorization": "Bearer demo-camera", "Content-Type": "application/json"}
GATE = "PD-03"  # pedestrian area, enforced around the clock


def call(
    port: int, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read())
    finally:
        conn.close()


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


class Load(threading.Thread):
    """Transits through nginx, as fast as one connection goes; every answer checked."""

    EXPECTED: ClassVar = {DEMO_RESIDENT: "allowed", DEMO_UNKNOWN: "pending"}

    def __init__(self, port: int) -> None:
        super().__init__(name="load", daemon=True)
        self.port, self.stop_event = port, threading.Event()
        self.answers: Counter[str] = Counter()
        self.wrong: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        n = 0
        while not self.stop_event.is_set():
            plate = DEMO_RESIDENT if n % 2 else DEMO_UNKNOWN
            body = {
                "event_id": f"load-{n}",
                "camera": "cam-1",
                "gate": GATE,
                "plate": plate,
                "ts": now_iso(),
                "confidence": 0.95,
            }
            n += 1
            try:
                conn.request("POST", "/v1/transits", json.dumps(body), CAMERA)
                r = conn.getresponse()
                reply = json.loads(r.read())
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self.wrong.append(f"transit {n}: {type(exc).__name__}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            self.answers[f"{r.status} {reply.get('verdict')}"] += 1
            if r.status != 200 or reply["verdict"] != self.EXPECTED[plate]:
                self.wrong.append(f"transit {n} {plate}: {r.status} {reply}")
        conn.close()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    topo = Topology(
        DEMO_CONFIG, tmp_path / "data", [free_port(), free_port()], proxy_port=free_port()
    )
    try:
        topo.start(permits=3000)
        yield topo
    finally:
        topo.stop()


def verdict(port: int, plate: str) -> str:
    body = {
        "event_id": f"probe-{plate}-{time.monotonic_ns()}",
        "camera": "cam-1",
        "gate": GATE,
        "plate": plate,
        "ts": now_iso(),
        "confidence": 0.95,
    }
    status, reply = call(port, "POST", "/v1/transits", CAMERA, body)
    assert status == 200, reply
    return str(reply["verdict"])


def converged(topo: Topology, plates: list[str], timeout_s: float = 30) -> int:
    """Every replica at the database's revision, enforcing every permit issued so far."""
    with PermitDB(topo.data_dir / "permits.sqlite") as db:
        revision = db.revision
    revisions = set()
    for i in range(1, topo.replicas + 1):
        info = topo.wait_ready(i, timeout_s, min_revision=revision)
        assert info["snapshot_rejected"] == 0, info  # no partial snapshot was ever offered
        revisions.add(info["index_revision"])
        for plate in plates:
            assert verdict(topo.replica_port(i), plate) == "allowed", (i, plate)
    assert revisions == {revision}
    return revision


@needs_nginx
def test_replicas_converge_through_every_fault(topology: Topology) -> None:
    topo = topology
    assert topo.proxy_port is not None and topo.redis is not None
    load = Load(topo.proxy_port)
    load.start()
    issued: list[str] = []

    def issue_some(tag: str, n: int = 3) -> None:
        for k in range(n):
            plate = f"{tag}{k:03d}XY"[:7]
            assert topo.proxy_port is not None
            issue(topo.proxy_port, f"{tag}-{k}", plate)  # through nginx
            issued.append(plate)

    try:
        issue_some("AA")
        converged(topo, issued)

        # 1. Redis killed (-9) under load; permits issued meanwhile; Redis restarted.
        topo.kill_redis()
        issue_some("BB")  # the database takes them; nobody can stream them yet
        time.sleep(1)
        topo.start_redis()
        converged(topo, issued)

        # 2. Redis absent while a replica starts: it serves its verified local copy.
        topo.kill_redis()
        topo.kill("replica-2")
        issue_some("CC")
        topo.start_replica(2)
        info = topo.wait_ready(2)
        assert info["redis"]["connected"] is False
        assert verdict(topo.replica_port(2), DEMO_RESIDENT) == "allowed"
        topo.start_redis()
        converged(topo, issued)

        # 3. A replica killed and restarted while Redis is up.
        topo.kill("replica-1")
        issue_some("DD")
        topo.start_replica(1)
        converged(topo, issued)

        # 4. The loader killed between copying a snapshot's chunks and switching to it.
        r = redis.Redis.from_url(topo.env["REDIS_URL"])
        keys = Keys()
        before = r.get(keys.current)
        issue_some("EE")
        assert topo.kill("loader", sig=15) == 0  # SIGTERM: a clean stop, the lease let go
        # With no loader, a permit write is refused: nothing would stream it to a replica.
        start = dt.datetime.now(dt.UTC)
        refused = {
            "permit_id": "FF-0",
            "type": "TEMP",
            "valid_from": start.isoformat(),
            "valid_to": (start + dt.timedelta(days=1)).isoformat(),
            "plates": [{"plate": "FF000XY"}],
        }
        status, reply = call(topo.proxy_port, "POST", "/v1/permits", ADMIN, refused)
        assert (status, reply["error"]) == (503, "loader_unavailable"), reply
        r.set(keys.wanted, b"1")  # a snapshot is due: the next loader publishes at once
        topo.start_loader(failpoint="publish_snapshot:before_switch")
        assert topo.procs["loader"].wait(60) == 137
        assert r.get(keys.current) == before  # the half-published snapshot is invisible
        topo.start_loader()  # (with none, the replicas would report `no loader` in seconds)
        for i in (1, 2):
            info = topo.wait_ready(i)
            assert info["snapshot_rejected"] == 0
        converged(topo, issued)  # the changes may come through the stream before the snapshot
        deadline = time.monotonic() + 30
        while r.get(keys.current) == before:  # the new loader publishes a whole one
            assert time.monotonic() < deadline, "no snapshot published after the crash"
            time.sleep(0.1)
        revision = converged(topo, issued)
        meta = r.hgetall(keys.snapshot_meta(r.get(keys.current).decode()))  # type: ignore[union-attr]
        assert int(meta[b"revision"]) == revision
        r.close()
    finally:
        load.stop_event.set()
        load.join(15)
    assert sum(load.answers.values()) > 200, load.answers
    assert load.wrong == [], load.wrong[:10]
