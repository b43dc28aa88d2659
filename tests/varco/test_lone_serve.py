"""`varco serve` as an operator meets it in Redis mode: a hang-up (SIGHUP: logrotate, a closed
terminal) never ends it, and run alone, with no loader, it refuses permit writes and reports
itself unready within seconds instead of 26 hours."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from enforcement.config.load import load_config
from enforcement.keys import Keys
from enforcement.replica.loader_presence import GRACE_S
from enforcement.replica.redis_server import EmbeddedRedis
from loader.watch import LoaderThread, WatchOptions

from ..support.api import ADMIN, NOW
from ..support.common import DEMO_CONFIG, ROOT
from ..support.process import Serving, http, varco, varco_env, wait_for

PERMIT = {
    "permit_id": "LONE-1",
    "type": "ONLINE",
    "valid_from": NOW.isoformat(),
    "valid_to": (NOW + dt.timedelta(hours=1)).isoformat(),
    "plates": [{"plate": "HK321LM"}],
    "source": "online",
}


def _issue(served: Serving) -> tuple[int, object]:
    return http(
        served.base + "/v1/permits",
        json.dumps(PERMIT).encode(),
        {**ADMIN, "Content-Type": "application/json"},
    )


def test_sighup_keeps_a_redis_mode_replica_serving(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    env = varco_env(tmp_path, REDIS_URL=redis_server.url)
    assert varco("demo", "--permits", "500", "--no-serve", env=env).returncode == 0
    for extra in ((), ("--workers", "2")):
        served = Serving(tmp_path, env, *extra)
        try:
            served.answering()
            before = served.get("/readyz")[1]["worker_pid"]
            served.signal(signal.SIGHUP)
            wait_for(lambda s=served: "SIGHUP: still serving" in s.log())  # type: ignore[misc]
            served.signal(signal.SIGHUP)  # and again: the handler stays
            wait_for(lambda s=served: s.log().count("SIGHUP: still serving") >= 2)  # type: ignore[misc]
            assert served.process.poll() is None, served.log()
            assert served.get("/healthz")[0] == 200
            if not extra:  # the same process answers: nothing was restarted
                assert served.get("/readyz")[1]["worker_pid"] == before
            assert "Redis's snapshot and feed status read now" in served.log()
            assert "exited with" not in served.log()  # no worker died of it either
        finally:
            assert served.stop() == 0, served.log()


def test_serve_alone_refuses_permit_writes_and_reports_unready(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    env = varco_env(tmp_path, REDIS_URL=redis_server.url)
    assert varco("demo", "--permits", "500", "--no-serve", env=env).returncode == 0
    served = Serving(tmp_path, env)
    loader = None
    try:
        served.answering()
        status, body = _issue(served)
        assert status == 503, body
        assert body["error"] == "loader_unavailable" and "varco watch" in body["detail"]

        def unready() -> object:
            status, body = served.get("/readyz")
            return status == 503 and "no loader" in (body["reason"] or "") and body

        body = wait_for(unready, timeout_s=GRACE_S + 5)
        assert body["loader"]["lease_held"] is False
        # A loader starts: the same service becomes ready and takes the write.
        settings, rules = load_config(DEMO_CONFIG, env)
        options = WatchOptions(poll_s=0.05, history_days=100_000, max_shrink=1.0)
        loader = LoaderThread(settings, rules, redis_server.url, options).start()
        wait_for(lambda: served.get("/readyz")[0] == 200, timeout_s=10)
        status, body = _issue(served)
        assert status == 201, body
    finally:
        if loader is not None:
            loader.stop()
        assert served.stop() == 0, served.log()


def test_sighup_keeps_the_loader_running(tmp_path: Path, redis_server: EmbeddedRedis) -> None:
    """`varco watch` took a hang-up as its default action: the loader died with the terminal."""
    env = varco_env(tmp_path, REDIS_URL=redis_server.url)
    assert varco("demo", "--permits", "500", "--no-serve", env=env).returncode == 0
    log_path = tmp_path / "watch.log"
    with log_path.open("wb") as log:
        watch = subprocess.Popen(
            [sys.executable, "-m", "varco.cli", "--config", str(DEMO_CONFIG), "watch"],
            env=env,
            cwd=ROOT,
            stderr=log,
        )
        try:
            keys = Keys(load_config(DEMO_CONFIG, env)[0].redis.prefix)
            client = redis.Redis.from_url(redis_server.url)
            wait_for(lambda: client.exists(keys.lease), timeout_s=60)
            for times in (1, 2):  # and again: the handler stays
                watch.send_signal(signal.SIGHUP)
                wait_for(lambda n=times: log_path.read_text().count("SIGHUP: still") >= n)  # type: ignore[misc]
            assert watch.poll() is None, log_path.read_text()
            time.sleep(1.0)  # past the 500 ms lease: still renewed by this loader
            assert client.exists(keys.lease), log_path.read_text()
        finally:
            watch.send_signal(signal.SIGTERM)
            assert watch.wait(30) == 0, log_path.read_text()
