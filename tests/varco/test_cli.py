"""The command line end to end, as a newcomer runs it: demo, serve, the printed requests."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..support.common import DEMO_CONFIG, ROOT, free_port


def varco(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "varco.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def http(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_demo_then_serve(tmp_path: Path) -> None:
    env = {**os.environ, "VARCO_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    demo = varco("--config", str(DEMO_CONFIG), "demo", "--permits", "3000", "--no-serve", env=env)
    assert demo.returncode == 0, demo.stderr
    curls = [line.strip() for line in demo.stdout.splitlines() if line.strip().startswith("curl")]
    assert len(curls) == 3
    # Nothing was started: the demo says what to start, never that it is starting.
    assert "starting" not in demo.stdout and "nothing is serving" in demo.stdout
    assert "varco serve" in demo.stdout and "varco watch" in demo.stdout

    port = free_port()
    env["VARCO_PORT"] = str(port)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "varco.cli", "--config", str(DEMO_CONFIG), "serve"],
        env=env,
        cwd=ROOT,
        stderr=log,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if http(base + "/readyz")[0] == 200:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.2)
        verdicts = []
        for line in curls[:2]:
            body = re.search(r"-d '(.*)'$", line).group(1)  # type: ignore[union-attr]
            url = re.search(r"curl -s (\S+)", line).group(1)  # type: ignore[union-attr]
            status, reply = http(
                url.replace(":8080", f":{port}"),
                body.encode(),
                {"Authorization": "Bearer demo-camera", "Content-Type": "application/json"},
            )
            assert status == 200
            verdicts.append(reply["verdict"])
        assert verdicts == ["allowed", "pending"]
        police_url = re.search(r"curl -s '(\S+)'", curls[2]).group(1)  # type: ignore[union-attr]
        # As printed: the police key and the reason every lookup must give.
        status, view = http(
            police_url.replace(":8080", f":{port}"),
            headers=dict(re.findall(r"-H '([^:]+): ([^']*)'", curls[2])),
        )
        assert status == 200 and view["permits"][0]["primary"] is False
        # A second service on the same port is refused, never sharing the traffic.
        for extra in ((), ("--workers", "2")):
            second = varco("--config", str(DEMO_CONFIG), "serve", *extra, env=env, timeout=60)
            assert second.returncode == 2, second.stderr
            assert f"127.0.0.1:{port} is already in use" in second.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=15) == 0
        log.close()
    assert "listening on" in (tmp_path / "serve.log").read_text()


def test_check_command(tmp_path: Path) -> None:
    env = {**os.environ, "VARCO_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    assert (
        varco(
            "--config", str(DEMO_CONFIG), "demo", "--permits", "500", "--no-serve", env=env
        ).returncode
        == 0
    )
    out = varco("--config", str(DEMO_CONFIG), "check", "AB123CD", "--gate", "PD-03", env=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["verdict"]["verdict"] == "allowed"
    assert result["police_view"]["permits"][0]["type"] == "1"
    judged = result["judged_on"]
    assert judged["changes_since_snapshot"] == 0
    # Imported and not yet in a snapshot: judged all the same, as a replica would.
    csv = tmp_path / "new.csv"
    csv.write_text(
        "permit_id,plate,type,valid_from,valid_to,zones,source,primary\n"
        "NEW-1,KL987MN,1,2020-01-01,,,municipal,true\n"
    )
    assert (
        varco("--config", str(DEMO_CONFIG), "import", str(csv), "--no-rebuild", env=env).returncode
        == 0
    )
    out = varco("--config", str(DEMO_CONFIG), "check", "KL987MN", "--gate", "PD-03", env=env)
    result = json.loads(out.stdout)
    assert (result["verdict"]["verdict"], result["verdict"]["permits"]) == ("allowed", ["NEW-1"])
    assert result["judged_on"]["changes_since_snapshot"] == 1
    assert result["judged_on"]["permit_database_revision"] == judged["snapshot_revision"] + 1


def test_bad_config_stops_startup(tmp_path: Path) -> None:
    bad = tmp_path / "city.toml"
    bad.write_text(DEMO_CONFIG.read_text().replace('zone = "ZTL"', 'zone = "ZTX"', 1))
    out = varco(
        "--config", str(bad), "serve", env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30
    )
    assert out.returncode == 2
    assert f"{bad}: gates.PD-01.zone: unknown zone 'ZTX'" in out.stderr


def test_serve_workers_share_one_port_and_a_dead_one_is_replaced(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "VARCO_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": "off",
    }
    demo = varco("--config", str(DEMO_CONFIG), "demo", "--permits", "500", "--no-serve", env=env)
    assert demo.returncode == 0, demo.stderr
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "varco.cli",
            "--config",
            str(DEMO_CONFIG),
            "serve",
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        env=env,
        cwd=ROOT,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"

    def workers_seen(want: int, timeout_s: float = 60) -> set[int]:
        """Fresh connections until `want` different worker pids answered /readyz."""
        seen: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(seen) < want:
            try:
                status, body = http(base + "/readyz")
                if status == 200:
                    seen.add(body["worker_pid"])
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, (seen, (tmp_path / "serve.log").read_text())
            time.sleep(0.02)
        return seen

    try:
        first = workers_seen(2)
        for extra in ((), ("--workers", "2")):  # only this service's workers share the port
            second = varco(
                "--config", str(DEMO_CONFIG), "serve", *extra, "--port", str(port), env=env
            )
            assert second.returncode == 2, second.stderr
            assert "already in use" in second.stderr
        os.kill(min(first), signal.SIGKILL)
        # The parent starts a new worker: the survivor and the newcomer share the port.
        later = workers_seen(2)
        assert min(first) not in later and len(later - first) == 1
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        log.close()
    assert "restarting it" in (tmp_path / "serve.log").read_text()


def test_make_run_issues_a_permit_that_is_enforced_at_once(tmp_path: Path) -> None:
    """`make run` (varco demo): our own Redis, the loader thread and the admin API in one
    process; a permit issued over HTTP is enforced by the same service a moment later, and
    everything stops with it."""
    from enforcement.replica.redis_server import EmbeddedRedis

    port = free_port()
    env = {
        **os.environ,
        "VARCO_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "VARCO_PORT": str(port),
    }
    env.pop("REDIS_URL", None)
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "varco.cli",
            "--config",
            str(DEMO_CONFIG),
            "demo",
            "--permits",
            "500",
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    redis_server = EmbeddedRedis(tmp_path / "data" / "redis")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, info = http(base + "/readyz")
                if status == 200 and info.get("redis", {}).get("connected"):
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "demo.log").read_text()
            time.sleep(0.2)
        now = time.time()
        iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(t))  # noqa: E731
        permit = {
            "permit_id": "HOTEL-9",
            "type": "TEMP",
            "valid_from": iso(now - 7200),
            "valid_to": iso(now + 86400),
            "plates": [{"plate": "GH789JK"}],
        }
        status, reply = http(
            base + "/v1/permits",
            json.dumps(permit).encode(),
            {"Authorization": "Bearer demo-admin", "Content-Type": "application/json"},
        )
        assert status == 201, reply
        deadline = time.monotonic() + 2
        for n in itertools.count():  # a new event each time: a retry would get the first answer
            transit = {
                "event_id": f"e-{n}",
                "camera": "cam-1",
                "gate": "PD-03",
                "plate": "GH789JK",
                "ts": iso(now),
            }
            status, verdict = http(
                base + "/v1/transits",
                json.dumps(transit).encode(),
                {"Authorization": "Bearer demo-camera", "Content-Type": "application/json"},
            )
            if verdict["verdict"] == "allowed":
                break
            assert time.monotonic() < deadline, verdict
            time.sleep(0.05)
        assert redis_server.answers()
    finally:
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=30) == 0
        log.close()
    assert not redis_server.answers()  # our Redis stopped with the service


def test_workers_refuse_a_port_another_program_listens_on(tmp_path: Path) -> None:
    env = {**os.environ, "VARCO_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    env["REDIS_URL"] = "off"
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        out = varco(
            "--config", str(DEMO_CONFIG), "serve", "--workers", "2", "--port", str(port), env=env
        )
    assert out.returncode == 2, out.stderr
    assert f"127.0.0.1:{port} is already in use" in out.stderr
