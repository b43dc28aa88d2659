"""The durable transit log through a real server and a real Redis we can kill: recorded before
acknowledged, retries not double-counted, Redis away -> spool -> replayed in order, a full
spool refuses with 503, a Redis that would not keep writes is not trusted."""

from __future__ import annotations

import collections
import functools
import gc
import itertools
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.transits.record import DECODE_RECORD, TransitRecord
from enforcement.transits.spool import all_frames

from ..support.api import CAMERA, Client, ServiceServer, stream, transit
from ..support.common import eventually, permit, publish_permits

PERMITS = [permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00")]
_N = itertools.count()


def spooled(settings: Settings) -> list[TransitRecord]:
    return [DECODE_RECORD(f) for f in all_frames(settings.storage.spool_dir)]


@pytest.fixture
def settings(demo: tuple[Settings, Rules], redis_server: EmbeddedRedis) -> Settings:
    """File snapshots (no follower needed) and the transit log on our Redis."""
    base, rules = demo
    publish_permits(base, rules, PERMITS)
    return with_changes(
        base,
        redis={"url": redis_server.url},
        server={"snapshot_poll_s": 0.05},
        transit_log={"write_timeout_s": 0.2},
    )


async def _serve(settings: Settings, rules: Rules) -> AsyncIterator[Client]:
    """Snapshots from files (no follower to disturb), transits to our Redis."""
    app = create_app(settings, rules, transit_redis_url=settings.redis.url)
    server = ServiceServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield Client(session, str(server.make_url("")).rstrip("/"))
    await server.close()


@pytest.fixture
async def api(settings: Settings, demo: tuple[Settings, Rules]) -> AsyncIterator[Client]:
    async for client in _serve(settings, demo[1]):
        await eventually(functools.partial(_ready, client))
        yield client


async def _ready(client: Client) -> bool:
    status, body, _ = await client.request("GET", "/readyz")
    return status == 200 and body["transit_log"]["target"] == "redis"


async def post(client: Client, plate: str, **extra: Any) -> dict[str, Any]:
    status, body, _ = await client.request(
        "POST", "/v1/transits", CAMERA, json=transit(plate, **extra)
    )
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_recorded_before_acknowledged(api: Client, settings: Settings) -> None:
    allowed = await post(api, "AB123CD")
    pending = await post(api, "ZZ999ZZ")
    records = {r.id: r for r in stream(settings)}
    assert set(records) == {allowed["transit_id"], pending["transit_id"]}
    rec = records[pending["transit_id"]]
    assert (rec.verdict, rec.reason, rec.plate, rec.gate, rec.zone, rec.camera) == (
        "pending",
        "no_permit",
        "ZZ999ZZ",
        "PD-03",
        "PEDONALE",
        "cam-1",
    )
    assert rec.grace_until is not None
    assert records[allowed["transit_id"]].permits == ["RES-1"]


async def test_retry_gets_first_verdict_and_writes_nothing(
    api: Client, settings: Settings, demo: tuple[Settings, Rules]
) -> None:
    first = await post(api, "GH789JK", event_id="retry-1")
    assert first["verdict"] == "pending"
    # A permit arrives; the camera retries the same event: same answer, same id, no new record.
    live = publish_permits(
        demo[0], demo[1], [permit("RES-2", "GH789JK", "1", "2020-01-01T00:00:00+01:00")]
    )
    await eventually(lambda: _revision_at_least(api, live.revision))
    again = await post(api, "GH789JK", event_id="retry-1")
    assert again == first
    fresh = await post(api, "GH789JK")  # a new event is judged afresh
    assert fresh["verdict"] == "allowed" and fresh["transit_id"] != first["transit_id"]
    assert [r.id for r in stream(settings)].count(first["transit_id"]) == 1
    assert len(stream(settings)) == 2


async def _revision_at_least(client: Client, revision: int) -> bool:
    status, body, _ = await client.request("GET", "/readyz")
    return status == 200 and body["index_revision"] >= revision


async def test_remembered_events_leave_nothing_for_the_collector(api: Client) -> None:
    """Every logged event is remembered for retries (up to 200,000 of them): as bytes, which
    the garbage collector does not track. A list per event (the verdict's permits) made its
    full collections walk them all, costing every post and the p99 under load."""
    for i in range(20):  # connections, caches
        await post(api, "AB123CD", event_id=f"warm-{i}")
    gc.collect()
    before = collections.Counter(type(o) for o in gc.get_objects())
    for i in range(300):  # allowed: each verdict names a permit
        await post(api, "AB123CD", event_id=f"gc-{i}")
    gc.collect()
    grown = collections.Counter(type(o) for o in gc.get_objects()) - before
    # (asyncio's timers and weak references come and go with the connections, not events)
    assert max(grown[list], grown[tuple], grown[dict]) < 20, grown  # one per event: 300


async def test_batch_with_a_repeated_event(api: Client, settings: Settings) -> None:
    items = [
        transit("ZZ999ZZ", event_id="b-1"),
        transit("AB123CD", event_id="b-2"),
        transit("ZZ999ZZ", event_id="b-1"),
    ]
    status, body, _ = await api.request(
        "POST", "/v1/transits/batch", CAMERA, json={"transits": items}
    )
    assert status == 200, body
    ids = [v["transit_id"] for v in body["results"]]
    assert ids[0] == ids[2] != ids[1]
    assert sorted(r.id for r in stream(settings)) == sorted({ids[0], ids[1]})


async def test_redis_away_spool_then_replay_in_order(
    api: Client, settings: Settings, redis_server: EmbeddedRedis
) -> None:
    before = [(await post(api, "ZZ999ZZ"))["transit_id"] for _ in range(5)]
    redis_server.kill()
    during = [(await post(api, "ZZ999ZZ"))["transit_id"] for _ in range(50)]
    _, body, _ = await api.request("GET", "/readyz")
    assert body["transit_log"]["target"] == "spool" and body["transit_log"]["spool_bytes"] > 0
    assert [r.id for r in spooled(settings)] == during
    # A retry while Redis is away is still answered from the first attempt.
    redis_server.start()
    after = [(await post(api, "ZZ999ZZ"))["transit_id"] for _ in range(5)]
    await eventually(functools.partial(_ready, api))
    assert [r.id for r in stream(settings)] == before + during + after
    assert spooled(settings) == []


async def test_retry_while_redis_is_away(
    api: Client, settings: Settings, redis_server: EmbeddedRedis
) -> None:
    redis_server.kill()
    first = await post(api, "ZZ999ZZ", event_id="away-1")
    again = await post(api, "ZZ999ZZ", event_id="away-1")
    assert again == first
    redis_server.start()
    await eventually(functools.partial(_ready, api))
    assert [r.id for r in stream(settings)] == [first["transit_id"]]


async def test_a_correction_while_redis_is_away_lands_as_one(
    api: Client, settings: Settings, redis_server: EmbeddedRedis
) -> None:
    first = await post(api, "ZZ999ZZ", event_id="away-fix-1")  # in Redis
    redis_server.kill()
    fixed = await post(api, "AB123CD", event_id="away-fix-1")  # to the spool
    assert (first["verdict"], fixed["verdict"]) == ("pending", "allowed")
    assert fixed["transit_id"] == first["transit_id"]
    redis_server.start()
    await eventually(functools.partial(_ready, api))
    assert [(r.id, r.plate, r.earlier) for r in stream(settings)] == [
        (first["transit_id"], "ZZ999ZZ", []),
        (first["transit_id"], "AB123CD", ["ZZ999ZZ"]),
    ]
    # Redis now remembers the correction: a retry of it is the standing answer.
    again = await post(api, "AB123CD", event_id="away-fix-1")
    assert (again["verdict"], again["transit_id"]) == ("allowed", first["transit_id"])
    assert len(stream(settings)) == 2


async def test_full_spool_refuses_with_503_and_so_the_retries(
    settings: Settings, demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> None:
    """Every 200 is on disk, no 503 is; a camera retries a 503, and the retry must not be
    answered as recorded (it was not)."""
    redis_server.kill()
    small = with_changes(settings, transit_log={"spool_max_bytes": 2000})
    async for api in _serve(small, demo[1]):
        await eventually(functools.partial(_index_loaded, api))
        answers = []
        for _ in range(30):
            sent = transit("ZZ999ZZ")
            codes = []
            for _attempt in range(2):
                status, body, r = await api.request("POST", "/v1/transits", CAMERA, json=sent)
                codes.append(status)
                if status == 503:
                    assert body["error"] == "spool_full" and r.headers["Retry-After"] == "5"
            answers.append(tuple(codes))
        assert answers[0] == (200, 200) and answers[-1] == (503, 503)
        assert set(answers) == {(503, 503), (200, 200)}
        assert len(spooled(small)) == answers.count((200, 200))
        status, body, _ = await api.request("GET", "/readyz")
        assert status == 503 and body["reason"] == "transit spool full"


async def _index_loaded(client: Client) -> bool:
    _, body, _ = await client.request("GET", "/readyz")
    return "index_revision" in body


async def test_redis_that_would_not_keep_writes_is_not_trusted(
    settings: Settings, demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> None:
    r = redis.Redis.from_url(redis_server.url)
    r.config_set("appendfsync", "everysec")  # Redis 7.0: no WAITAOF either
    version = r.info("server")["redis_version"]
    async for api in _serve(settings, demo[1]):
        await eventually(functools.partial(_index_loaded, api))
        body = await post(api, "ZZ999ZZ")
        _, ready, _ = await api.request("GET", "/readyz")
        if tuple(int(x) for x in version.split(".")[:2]) >= (7, 2):
            await eventually(functools.partial(_ready, api))  # WAITAOF makes it durable
        else:
            assert ready["transit_log"]["target"] == "spool"
            assert "appendfsync" in ready["transit_log"]["last_error"]
            assert [x.id for x in spooled(settings)] == [body["transit_id"]]
            r.config_set("appendfsync", "always")
            await eventually(functools.partial(_ready, api))
            assert [x.id for x in stream(settings)] == [body["transit_id"]]
    r.close()
