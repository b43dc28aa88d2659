"""An attack run against `varco serve` as a city runs it (a process, its log on stderr), then
the log read whole: no key, token, plate or body in any line, whatever aiohttp or another
library logs of malformed requests."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ..support.common import DEMO_CONFIG, ROOT, free_port

VARCO = (sys.executable, "-m", "varco.cli", "--config", str(DEMO_CONFIG))
SECRETS = (
    "demo-police",
    "demo-rekor",
    "demo-axis-token",
    "demo-camera",
    "s3cret-token",
    "AB123CD",
    "ZX987YW",
    "Bearer",
)


def send(port: int, raw: bytes, wait_s: float = 1.0) -> bytes:
    """`raw` on a fresh connection; whatever comes back before the server closes or `wait_s`."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(raw)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def attack(port: int) -> None:
    bad = [
        # A request line and headers aiohttp cannot parse, quoting a token, a key, a plate.
        b"GET /v1/cameras/axis/demo-axis-token\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /v1/plates/AB123CD HTTP/1.1\r\nAuthorization: Bearer demo-police\x01\r\n\r\n",
        b"POST /v1/transits HTTP/1.1\r\nX-Plate-ZX987YW\r\n\r\n",
        b"POST /v1/transits HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 7\r\n"
        b"Authorization: Bearer demo-camera\r\n\r\nAB123",
        b"POST /v1/transits HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nAB123CD\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 s3cret-token",  # TLS to a plain port
        b"GET /" + b"A" * 9000 + b"s3cret-token HTTP/1.1\r\n\r\n",  # request line too long
    ]
    for raw in bad:
        send(port, raw)
    # A part whose Content-Disposition aiohttp warns about, quoting a token.
    boundary = b"b0undary"
    body = (
        b'--b0undary\r\nContent-Disposition: form-data; name="demo-axis-token\r\n\r\n'
        b'{"plate": "AB123CD"}\r\n--b0undary--\r\n'
    )
    send(
        port,
        b"POST /v1/cameras/axis/demo-axis-token HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=" + boundary + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
    )
    deep = b'{"plate": "AB123CD", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    bomb = gzip.compress(b"AB123CD" + bytes(20 << 20))
    for path, data, headers in (
        ("/v1/cameras/rekor", deep, {"Authorization": "Bearer demo-rekor"}),
        ("/v1/cameras/rekor", bomb, {"Content-Encoding": "gzip"}),
        ("/v1/transits", bomb, {"Content-Encoding": "gzip", "Authorization": "Bearer nope"}),
        ("/v1/plates/AB123CD?reason=x", None, {"Authorization": "Bearer s3cret-token"}),
    ):
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=data,
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            urllib.request.urlopen(req, timeout=5).close()
        except urllib.error.HTTPError as exc:
            assert exc.code < 500, (path, exc.code)
    # A client that leaves mid-body, and one that never finishes its head.
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(
            b"POST /v1/transits HTTP/1.1\r\nAuthorization: Bearer demo-camera\r\n"
            b'Content-Type: application/json\r\nContent-Length: 300\r\n\r\n{"plate": "AB123CD"'
        )
        time.sleep(0.1)
    send(port, b"POST /v1/transits HTTP/1.1\r\nAuthorization: Bearer demo-camera\r\n", 0.2)


def ready(port: int) -> bool:
    try:
        return b" 200 " in send(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n", 0.5)[:20]
    except OSError:
        return False


@pytest.mark.parametrize("workers", [1, 2])
def test_an_attack_leaves_no_secret_in_the_log(tmp_path: Path, workers: int) -> None:
    env = {
        **os.environ,
        "VARCO_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "REDIS_URL": "off",
    }
    demo = subprocess.run(
        [*VARCO, "demo", "--permits", "200", "--no-serve"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert demo.returncode == 0, demo.stderr
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*VARCO, "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while not ready(port):
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.2)
            attack(port)
        finally:
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
    text = log_path.read_text(errors="replace")
    assert "listening on" in text or "workers on" in text
    # The demo's camera key has its id for a key: the start-up warning names the id.
    lines = [ln.replace("camera key 'demo-camera'", "") for ln in text.splitlines()]
    leaked = [line for line in lines if any(s in line for s in SECRETS)]
    assert not leaked, leaked
