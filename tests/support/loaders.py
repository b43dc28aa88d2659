"""Loader processes beside the loopback topology (deploy/topology.py): a second `varco watch`
standing by, who holds the lease, a permit issued through a replica's admin API and the index
revision each replica serves."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
from typing import Any

import redis

from deploy.topology import Topology
from enforcement.keys import Keys

ADMIN = {"Authorization": "Bearer demo-admin", "Content-Type": "application/json"}


def wait_log(topo: Topology, name: str, text: str, timeout_s: float = 30) -> None:
    path = topo.log_dir / f"{name}.log"
    deadline = time.monotonic() + timeout_s
    while text not in (path.read_text() if path.exists() else ""):
        if topo.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited; see {path}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not log {text!r} within {timeout_s:.0f} s")
        time.sleep(0.05)


def lease_holder(r: redis.Redis, keys: Keys) -> tuple[int, int] | None:
    """(epoch, pid) of the loader holding the lease (its token is `epoch host:pid`)."""
    token: Any = r.get(keys.lease)
    if token is None:
        return None
    epoch, name = token.decode().split(" ", 1)
    return int(epoch), int(name.rsplit(":", 1)[1])


def issue(port: int, permit_id: str, plate: str) -> int:
    """A one-day TEMP permit valid from half an hour ago, through the admin API; its revision."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
    body = {
        "permit_id": permit_id,
        "type": "TEMP",
        "valid_from": start.isoformat(),
        "valid_to": (start + dt.timedelta(days=1)).isoformat(),
        "plates": [{"plate": plate}],
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/permits", json.dumps(body), ADMIN)
        reply = conn.getresponse()
        out = json.loads(reply.read())
    finally:
        conn.close()
    assert reply.status == 201, out
    return int(out["revision"])


def wait_revision(topo: Topology, revision: int, timeout_s: float = 30) -> float:
    """Poll every replica's /readyz until each serves `revision`; when the last one did
    (monotonic seconds)."""
    deadline = time.monotonic() + timeout_s
    pending = set(range(1, topo.replicas + 1))
    while pending:
        for i in list(pending):
            got = topo.readiness(i)
            if got is not None and got[1].get("index_revision", -1) >= revision:
                pending.discard(i)
        if pending and time.monotonic() > deadline:
            raise TimeoutError(f"replicas {sorted(pending)} not at revision {revision}")
        if pending:
            time.sleep(0.005)
    return time.monotonic()
