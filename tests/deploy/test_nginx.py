"""deploy/nginx.conf, run by the OS's nginx (deploy/nginx.py) in front of two real replicas
of the loopback topology: the per-run configuration differs from the file compose mounts only
in ports and log path, and a POST answered 503 by one replica (not ready: no index, no Redis),
or sent to a replica that is down, is answered by the other one."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.nginx import TEMPLATE, Nginx, render
from deploy.topology import Topology
from varco.demo import DEMO_RESIDENT

from ..support.common import DEMO_CONFIG, free_port
from ..support.deploy import call, needs_nginx

CAMERA = {"Authorization": "Bearer demo-camera", "Content-Type": "application/json"}


def test_the_run_configuration_is_composes_with_other_ports(tmp_path: Path) -> None:
    template = TEMPLATE.read_text()
    out = render(template, 9000, [9101, 9102, 9103], tmp_path / "access.log")
    removed = set(template.splitlines()) - set(out.splitlines())
    added = set(out.splitlines()) - set(template.splitlines())
    assert {line.strip() for line in removed} == {
        "server enforcement-1:8080 max_fails=0 max_conns=64;",
        "server enforcement-2:8080 max_fails=0 max_conns=64;",
        "listen 8080;",
        "access_log /var/log/nginx/access.log varco;",
    }
    assert {line.strip() for line in added} == {
        "server 127.0.0.1:9101 max_fails=0 max_conns=64;",
        "server 127.0.0.1:9102 max_fails=0 max_conns=64;",
        "server 127.0.0.1:9103 max_fails=0 max_conns=64;",
        "listen 127.0.0.1:9000;",
        f"access_log {tmp_path / 'access.log'} varco;",
    }
    with pytest.raises(ValueError, match="listen 8080"):
        render(template.replace("listen 8080;", "listen 80;"), 9000, [9101], tmp_path / "a")


def transit(n: int) -> dict[str, object]:
    return {
        "event_id": f"failover-{n}",
        "camera": "cam-1",
        "gate": "PD-03",
        "plate": DEMO_RESIDENT,
        "ts": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "confidence": 0.95,
    }


def posts_through(topo: Topology, first: int, count: int) -> None:
    """`count` transits through nginx, each answered 200 allowed."""
    assert topo.proxy_port is not None
    for n in range(first, first + count):
        status, reply = call(topo.proxy_port, "POST", "/v1/transits", CAMERA, transit(n))
        assert (status, reply.get("verdict")) == (200, "allowed"), (n, status, reply)


def access_log(topo: Topology) -> list[str]:
    return (topo.log_dir / "nginx-access.log").read_text().splitlines()


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[Topology]:
    topo = Topology(
        DEMO_CONFIG, tmp_path / "data", [free_port(), free_port()], proxy_port=free_port()
    )
    try:
        topo.start(permits=1000)
        yield topo
    finally:
        topo.stop()


@needs_nginx
def test_a_post_answered_503_or_refused_is_answered_by_the_other_replica(
    topology: Topology,
) -> None:
    topo = topology
    assert topo.proxy_port is not None
    assert topo.procs["proxy"].args[0].endswith("nginx")  # the real one, not a stand-in
    posts_through(topo, 0, 4)

    # Replica 1 restarted with no snapshot and no Redis to fetch one from: not ready, it
    # answers every transit 503 (while replica 2 serves from memory, spooling transits).
    topo.kill_redis()
    topo.kill("replica-1")
    shutil.rmtree(topo.data_dir / "replica-1" / "snapshots")
    topo.start_replica(1)
    deadline = time.monotonic() + 30
    while (got := topo.readiness(1)) is None or got[0] != 503:
        assert time.monotonic() < deadline, f"replica 1 never answered not ready: {got}"
        time.sleep(0.1)
    status, reply = call(topo.replica_port(1), "POST", "/v1/transits", CAMERA, transit(99))
    assert (status, reply["error"]) == (503, "not_ready")

    posts_through(topo, 100, 20)
    retried = [line for line in access_log(topo) if "upstream_status=503, 200" in line]
    assert retried and all(" POST 200 " in line for line in retried), access_log(topo)[-10:]

    # Replica 1 down: the connection is refused, and the next replica answers.
    topo.kill("replica-1")
    posts_through(topo, 200, 20)
    refused = [line for line in access_log(topo) if "upstream_status=502, 200" in line]
    assert refused and all(" POST 200 " in line for line in refused), access_log(topo)[-10:]


@needs_nginx
def test_bodies_over_the_service_caps_stop_at_nginx_as_json(topology: Topology) -> None:
    assert topology.proxy_port is not None
    big = b"x" * (1 << 20 | 1)  # over max_body_bytes (1 MiB)
    status, reply = call(topology.proxy_port, "POST", "/v1/transits", CAMERA, raw=big)
    assert (status, reply["error"]) == (413, "too_large")
    # Camera posts carry pictures: up to max_camera_body_bytes (8 MiB) reaches the service,
    # which answers for itself (this vendor route wants the camera's own credentials).
    status, reply = call(topology.proxy_port, "POST", "/v1/cameras/axis", {}, raw=big * 2)
    assert status != 413 and reply["error"] != "too_large", reply


@needs_nginx
def test_past_max_conns_on_every_replica_nginx_refuses_at_once(tmp_path: Path) -> None:
    """A replica holding max_conns requests gets no more: nginx answers the next one 503 +
    Retry-After itself, at once, instead of queueing it on the replica (the shedding the
    overload bench measures). A replica that is down is answered the same way."""
    template = TEMPLATE.read_text()
    max_conns = int(re.search(r"max_conns=(\d+)", template)[1])  # type: ignore[index]
    stuck = socket.create_server(("127.0.0.1", 0), backlog=max_conns * 2)  # reads, never answers
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        stuck.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(stuck.accept()[0])
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    nginx = Nginx(free_port(), [stuck.getsockname()[1]], tmp_path / "access.log")
    with (tmp_path / "nginx.log").open("ab") as log:
        proc = nginx.start(log)
    clients: list[http.client.HTTPConnection] = []
    try:
        nginx.wait_listening()
        body = json.dumps(transit(1))
        for _ in range(max_conns):  # each takes one upstream connection and waits on it
            conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
            conn.request("POST", "/v1/transits", body=body, headers=CAMERA)
            clients.append(conn)
        deadline = time.monotonic() + 10
        while len(held) < max_conns:
            assert time.monotonic() < deadline, f"only {len(held)} requests reached the replica"
            time.sleep(0.01)
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
        conn.request("POST", "/v1/transits", body=body, headers=CAMERA)
        with conn.getresponse() as reply:
            assert reply.status == 503
            assert reply.getheader("Retry-After") == "1"
            assert json.loads(reply.read())["error"] == "unavailable"
        conn.close()
        assert time.monotonic() - started < 1.0  # refused, not queued behind the held ones
        assert len(held) == max_conns  # the refused request never reached the replica
    finally:
        stop.set()
        for c in clients:
            c.close()
        proc.terminate()
        proc.wait(timeout=10)
        nginx.cleanup()
        acceptor.join(timeout=5)
        for s in held:
            s.close()
        stuck.close()


@needs_nginx
def test_no_replica_up_is_a_503_with_retry_after(tmp_path: Path) -> None:
    nginx = Nginx(free_port(), [free_port()], tmp_path / "access.log")  # nothing listens there
    with (tmp_path / "nginx.log").open("ab") as log:
        proc = nginx.start(log)
    try:
        nginx.wait_listening()
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=30)
        conn.request("POST", "/v1/transits", body=json.dumps(transit(1)), headers=CAMERA)
        with conn.getresponse() as reply:
            assert (reply.status, reply.getheader("Retry-After")) == (503, "1")
            assert json.loads(reply.read())["error"] == "unavailable"
        conn.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        nginx.cleanup()
