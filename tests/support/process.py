"""`varco` as an operator runs it: a real process on a port of its own, its log in a file, and
plain HTTP to it (urllib: no event loop needed in the test)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .common import DEMO_CONFIG, ROOT, free_port


def varco_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "VARCO_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        **extra,
    }


def varco(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A `varco` command run to its end, with the demo configuration."""
    return subprocess.run(
        [sys.executable, "-m", "varco.cli", "--config", str(DEMO_CONFIG), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def http(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout_s: float = 5,
) -> tuple[int, Any]:
    """Status and body (JSON if it is, else text)."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


class Serving:
    """`varco serve ARGS` on a free port until `stop()` (SIGTERM, then its exit code)."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"serve-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "varco.cli",
                "--config",
                str(DEMO_CONFIG),
                "serve",
                "--port",
                str(self.port),
                *args,
            ],
            env=env,
            cwd=ROOT,
            stderr=self._log,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str) -> tuple[int, Any]:
        return http(self.base + path)

    def answering(self, timeout_s: float = 60) -> None:
        """Until /healthz answers (the process serves, ready or not)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            assert self.process.poll() is None, f"exited {self.process.returncode}: {self.log()}"
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.1)

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout_s: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        finally:
            self._log.close()


def wait_for(probe: Any, timeout_s: float = 20, every_s: float = 0.1) -> Any:
    """Poll a synchronous probe until it returns something truthy; else fail with its value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {value!r}"
        time.sleep(every_s)
