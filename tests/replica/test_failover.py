"""Loader failover with real processes (deploy/topology.py: Redis, `varco watch`, two
replicas) and a second `varco watch` standing by: the active loader killed with -9, or paused
(SIGSTOP) past its lease and resumed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from deploy.topology import Topology
from enforcement.keys import Keys

from ..support.common import DEMO_CONFIG, free_port
from ..support.loaders import issue, lease_holder, wait_log, wait_revision


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    topo = Topology(DEMO_CONFIG, tmp_path / "data", [free_port(), free_port()])
    try:
        topo.start(permits=3000)
        yield topo
    finally:
        topo.stop()


@pytest.fixture
def r(topology: Topology) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(topology.env["REDIS_URL"])
    yield client
    client.close()


def test_a_standby_takes_over_a_killed_loader_within_a_second(
    topology: Topology, r: redis.Redis
) -> None:
    topo, keys = topology, Keys()
    standby = topo.start_loader("loader-2")
    wait_log(topo, "loader-2", "standing by")
    held = lease_holder(r, keys)
    assert held is not None and held[1] == topo.procs["loader"].pid

    topo.kill("loader")  # SIGKILL: no release, the lease must expire
    t0 = time.monotonic()
    revision = issue(topo.replica_port(1), "FAILOVER-1", "FO123VR")
    took = wait_revision(topo, revision, timeout_s=15) - t0

    # 500 ms of lease, then a round trip: ~1 s on a quiet host. The figure is the bench's
    # (bench_failover: p99 399 ms); this bound only tells a takeover as the lease expires from
    # the old 10 s lease, with room for a host loaded by the rest of the suite (1.52 s seen).
    assert took < 5, f"issued after the kill, enforced at both replicas in {took:.2f} s"
    now = lease_holder(r, keys)
    assert now == (held[0] + 1, standby)


def test_a_paused_loader_resumed_after_a_takeover_writes_nothing(
    topology: Topology, r: redis.Redis
) -> None:
    """SIGSTOP past the lease: the standby takes over; SIGCONT: the old loader finds its token
    gone and stands by. Had it written (an entry out of the chain), the replicas would turn
    stale and answer 503."""
    topo, keys = topology, Keys()
    standby = topo.start_loader("loader-2")
    wait_log(topo, "loader-2", "standing by")
    first = topo.procs["loader"]
    first.send_signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 10
        while (lease_holder(r, keys) or (0, 0))[1] != standby:
            assert time.monotonic() < deadline, "the standby did not take over"
            time.sleep(0.02)
        wait_revision(topo, issue(topo.replica_port(1), "PAUSED-1", "PA100SE"), timeout_s=5)
    finally:
        first.send_signal(signal.SIGCONT)
    wait_log(topo, "loader", "standing by", timeout_s=10)
    for k in range(3):
        wait_revision(topo, issue(topo.replica_port(2), f"PAUSED-{k + 2}", f"PA{k:03d}SE"), 5)

    assert (lease_holder(r, keys) or (0, 0))[1] == standby
    for i in (1, 2):
        got = topo.readiness(i)
        assert got is not None and got[0] == 200, got  # never stale: the chain is whole
        assert got[1]["redis"]["resyncs"] == 0, got
