"""The command line end to end, as a newcomer runs it: demo, serve, the printed requests."""

from __future__ import annotations

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

from tests.conftest import DEMO_CONFIG, ROOT


def varco(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loader.cli", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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

    port = free_port()
    env["VARCO_PORT"] = str(port)
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "loader.cli", "--config", str(DEMO_CONFIG),
                               "serve"], env=env, cwd=ROOT, stderr=log)  # fmt: skip
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
            status, reply = http(url.replace(":8080", f":{port}"), body.encode(),
                                 {"Authorization": "Bearer demo-camera",
                                  "Content-Type": "application/json"})  # fmt: skip
            assert status == 200
            verdicts.append(reply["verdict"])
        assert verdicts == ["allowed", "pending"]
        police_url = re.search(r"curl -s '(\S+)'", curls[2]).group(1)  # type: ignore[union-attr]
        status, view = http(police_url.replace(":8080", f":{port}"),
                            headers={"Authorization": "Bearer demo-police"})  # fmt: skip
        assert status == 200 and view["permits"][0]["primary"] is False
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


def test_bad_config_stops_startup(tmp_path: Path) -> None:
    bad = tmp_path / "city.toml"
    bad.write_text(DEMO_CONFIG.read_text().replace('zone = "ZTL"', 'zone = "ZTX"', 1))
    out = varco(
        "--config", str(bad), "serve", env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=30
    )
    assert out.returncode == 2
    assert f"{bad}: gates.PD-01.zone: unknown zone 'ZTX'" in out.stderr
