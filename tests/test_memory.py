"""enforcement/memory.py: Redis's memory bounded and watched, with a real, small Redis filled to
its ceiling. At the ceiling transits are answered and spooled, then replayed when memory is
freed, nothing lost; a full spool answers 503 with Retry-After; /readyz warns past the warning
share and /metrics shows the gauges; a police lookup that cannot be audited is refused 503,
never 500; a Redis whose policy would evict evidence is refused at start-up, and one switched
to such a policy while running gets no more transits."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.memory import EvictingRedis, MemoryState, MemoryWatch, check_at_startup
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.transits.record import DECODE_RECORD
from enforcement.transits.spool import all_frames
from varco import cli

from .support.api import CAMERA, Client, stream, transit
from .support.audit import LOOKUP, start
from .support.common import DEMO_CONFIG, eventually, permit, publish_permits
from .support.memory import SMALL, empty, fill, memory, small_redis

PERMITS = [permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00")]


@pytest.fixture
def small(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = small_redis(tmp_path / "small-redis")
    yield server
    server.stop()


@pytest.fixture
def r(small: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(small.url)
    yield client
    client.close()


@pytest.fixture
def settings(demo: tuple[Settings, Rules], small: EmbeddedRedis) -> Settings:
    base, rules = demo
    publish_permits(base, rules, PERMITS)
    return with_changes(
        base,
        redis={"url": small.url, "memory_poll_s": 0.05, "memory_warn": 0.8},
        transit_log={"write_timeout_s": 0.5},
    )


async def _serve(settings: Settings, rules: Rules) -> AsyncIterator[Client]:
    """Snapshot files loaded, transits and the audit trail in the small Redis."""
    server, session, service = await start(settings, rules, settings.redis.url)
    try:
        yield service.client
    finally:
        await session.close()
        await server.close()


@pytest.fixture
async def api(settings: Settings, demo: tuple[Settings, Rules]) -> AsyncIterator[Client]:
    async for client in _serve(settings, demo[1]):
        await eventually(functools.partial(_target, client, "redis"))
        yield client


async def _target(client: Client, target: str) -> bool:
    status, body, _ = await client.request("GET", "/readyz")
    return status == 200 and body["transit_log"]["target"] == target


async def _memory_state(client: Client, state: str) -> dict[str, object] | None:
    _, body, _ = await client.request("GET", "/readyz")
    return body if body["redis_memory"]["state"] == state else None  # type: ignore[no-any-return]


async def _metrics(client: Client) -> dict[str, float]:
    _, text, _ = await client.request("GET", "/metrics")
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r"^(varco_\S+) (\S+)$", text, re.MULTILINE)
    }


def spooled(settings: Settings) -> list[str]:
    return [DECODE_RECORD(f).id for f in all_frames(settings.storage.spool_dir)]


async def test_at_the_ceiling_transits_are_spooled_then_replayed(
    api: Client, settings: Settings, r: redis.Redis
) -> None:
    before = [
        (await api.request("POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ")))[1]
        for _ in range(3)
    ]
    # Past the warning share: still ready, a warning, the gauge at 1.
    fill(r, 0.85)
    body = await eventually(functools.partial(_memory_state, api, "warn"))
    assert body["ready"] is True
    assert any(w.startswith("Redis memory at 8") for w in body["warnings"]), body["warnings"]
    metrics = await _metrics(api)
    assert metrics["varco_redis_memory_state"] == MemoryState.WARN
    assert metrics["varco_redis_memory_max_bytes"] == SMALL
    assert 0.85 * SMALL <= metrics["varco_redis_memory_used_bytes"] < SMALL

    # At the ceiling Redis refuses writes: every transit is still judged, answered and kept.
    fill(r)
    answers = []
    for plate in ["ZZ999ZZ", "AB123CD"] * 10:
        status, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=transit(plate))
        assert status == 200, body
        answers.append(body)
    assert [a["verdict"] for a in answers[:2]] == ["pending", "allowed"]
    during = [a["transit_id"] for a in answers]
    assert spooled(settings) == during
    retry = await api.request(
        "POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ", event_id=answers[0]["event_id"])
    )
    assert retry[1] == answers[0]  # a retry while spooled: the standing answer
    body = await eventually(functools.partial(_memory_state, api, "full"))
    assert body["ready"] is True and body["transit_log"]["target"] == "spool"
    assert "OOM" in body["transit_log"]["last_error"]
    assert any("full" in w and "local spool" in w for w in body["warnings"]), body["warnings"]
    metrics = await _metrics(api)
    assert metrics["varco_redis_memory_state"] == MemoryState.FULL
    assert metrics["varco_transit_log_to_spool"] == 1
    assert metrics["varco_transits_spooled_total"] == len(during)

    # Memory freed: the spool is replayed in order, nothing lost, nothing twice.
    empty(r)
    await eventually(functools.partial(_target, api, "redis"), timeout_s=20)
    after = (await api.request("POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ")))[1]
    ids = [rec.id for rec in stream(settings)]
    assert ids == [b["transit_id"] for b in before] + during + [after["transit_id"]]
    assert spooled(settings) == []
    body = await eventually(functools.partial(_memory_state, api, "ok"))
    assert "warnings" not in body
    assert not any('status="500"' in line for line in (await _text(api, "/metrics")))


async def _text(client: Client, path: str) -> list[str]:
    _, text, _ = await client.request("GET", path)
    return str(text).splitlines()


async def test_at_the_ceiling_with_a_full_spool_transits_are_refused_503(
    settings: Settings, demo: tuple[Settings, Rules], r: redis.Redis
) -> None:
    tiny_spool = with_changes(settings, transit_log={"spool_max_bytes": 2000})
    async for api in _serve(tiny_spool, demo[1]):
        await eventually(functools.partial(_target, api, "redis"))
        fill(r)
        codes = []
        for _ in range(30):
            status, body, resp = await api.request(
                "POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ")
            )
            codes.append(status)
            if status == 503:
                assert body["error"] == "spool_full" and resp.headers["Retry-After"] == "5"
        assert 200 in codes and codes[-1] == 503 and 500 not in codes
        assert len(spooled(tiny_spool)) == codes.count(200)  # every 200 kept, no 503


async def test_at_the_ceiling_a_police_lookup_is_refused_503_not_500(
    api: Client, r: redis.Redis
) -> None:
    status, body, _ = await api.request("GET", "/v1/plates/AB123CD", LOOKUP)
    assert status == 200, body
    fill(r)
    status, body, resp = await api.request("GET", "/v1/plates/AB123CD", LOOKUP)
    assert (status, body["error"]) == (503, "audit_unavailable")
    assert resp.headers["Retry-After"] == "1"
    empty(r)
    status, body, _ = await api.request("GET", "/v1/plates/AB123CD", LOOKUP)
    assert status == 200, body


async def test_a_policy_switched_to_eviction_gets_no_more_transits(
    api: Client, settings: Settings, r: redis.Redis
) -> None:
    first = (await api.request("POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ")))[1]
    r.config_set("maxmemory-policy", "allkeys-lru")
    await eventually(functools.partial(_target, api, "spool"))
    status, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ"))
    assert status == 200 and spooled(settings) == [body["transit_id"]]
    _, ready, _ = await api.request("GET", "/readyz")
    assert any("allkeys-lru" in w for w in ready["warnings"]), ready
    assert "allkeys-lru" in ready["transit_log"]["last_error"]
    r.config_set("maxmemory-policy", "noeviction")
    await eventually(functools.partial(_target, api, "redis"), timeout_s=20)
    assert [rec.id for rec in stream(settings)] == [first["transit_id"], body["transit_id"]]


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl"])
def test_an_evicting_redis_is_refused_at_start_up(
    policy: str,
    demo: tuple[Settings, Rules],
    r: redis.Redis,
    small: EmbeddedRedis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    check_at_startup(small.url, 0)  # noeviction: fine
    r.config_set("maxmemory-policy", policy)
    with pytest.raises(EvictingRedis, match=f"maxmemory-policy {policy}"):
        check_at_startup(small.url, 0)
    monkeypatch.setenv("VARCO_DATA_DIR", str(demo[0].storage.data_dir))
    monkeypatch.setenv("REDIS_URL", small.url)
    capsys.readouterr()
    assert cli.main(["--config", str(DEMO_CONFIG), "serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"varco serve: Redis has maxmemory-policy {policy}" in err
    assert "set maxmemory-policy noeviction" in err


def test_an_unbounded_external_redis_is_started_on_with_a_warning(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    check_at_startup(redis_server.url, 2 << 30)
    assert "Redis has no maxmemory: watching it against [redis] max_memory" in caplog.text


def test_our_own_redis_is_bounded_and_never_evicts(r: redis.Redis) -> None:
    cfg = r.config_get("maxmemory*")
    assert (cfg["maxmemory"], cfg["maxmemory-policy"]) == (str(SMALL), "noeviction")
    used, ceiling = memory(r)
    assert used < ceiling == SMALL


def test_memory_states() -> None:
    w = MemoryWatch("unix:///nowhere", configured_max=1000, warn_fraction=0.8, poll_s=1)
    assert w.state == MemoryState.UNKNOWN
    w.update(500, 0, "noeviction")  # no maxmemory: ours, watched only
    assert (w.state, w.ceiling, w.enforced, w.warnings()) == (MemoryState.OK, 1000, False, [])
    w.update(800, 0, "noeviction")
    assert w.state == MemoryState.WARN and "[redis] max_memory" in w.warnings()[0]
    w.update(1000, 2000, "noeviction")  # Redis's own maxmemory wins
    assert (w.state, w.ceiling, w.enforced) == (MemoryState.OK, 2000, True)
    w.update(2100, 2000, "noeviction")
    assert w.state == MemoryState.FULL and "transits go to the local spool" in w.warnings()[0]
    told: list[str] = []
    w.on_evicting = told.append
    w.update(10, 2000, "volatile-lru")
    assert w.state == MemoryState.OK and len(told) == 1 and "volatile-lru" in w.warnings()[0]
    unbounded = MemoryWatch("unix:///nowhere", configured_max=0, warn_fraction=0.8, poll_s=1)
    unbounded.update(10**12, 0, "noeviction")
    assert (unbounded.state, unbounded.status()["max_bytes"]) == (MemoryState.OK, 0)


async def test_the_watch_stops_when_a_poll_swallows_the_cancel(redis_server: EmbeddedRedis) -> None:
    """A cancel that lands while the Redis client reads can come out of it as an error the
    poll catches: the watch must stop anyway (a `varco serve` on a taken port hung here)."""

    class Swallowing(MemoryWatch):
        swallow = True

        async def poll(self) -> None:
            try:
                await asyncio.sleep(0.2)
            except asyncio.CancelledError:
                if not self.swallow:  # as the client may, until the test is over
                    raise

    watch = Swallowing(redis_server.url, configured_max=0, warn_fraction=0.8, poll_s=0.01)
    await watch.start()
    await asyncio.sleep(0.05)  # inside a poll
    stopping = asyncio.ensure_future(watch.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    if not done:  # end it for the next test, then fail
        watch.swallow = False
        assert watch._task is not None
        watch._task.cancel()
        await stopping
    assert done, "the watch went on after stop()"
