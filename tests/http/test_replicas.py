"""GET /v1/replicas: every serving process's status through Redis, the stale ones gone."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import redis.asyncio as aredis

from enforcement.audit.writer import HOST
from enforcement.http.app import create_app
from enforcement.http.replicas import FRESH_S
from enforcement.http.service import SERVICE
from enforcement.keys import Keys

from ..support.api import CAMERA, POLICE, Client, ServiceServer
from ..support.common import eventually
from ..support.desk import OPERATOR
from ..support.followup import World, ready_to_log


async def _replicas(client: Client) -> list[dict[str, Any]]:
    status, body, _ = await client.request("GET", "/v1/replicas", OPERATOR)
    assert status == 200, body
    return body["replicas"]  # type: ignore[no-any-return]


async def test_two_replicas_are_listed_and_a_stale_one_disappears(desk: World) -> None:
    settings = desk.settings
    other_app = create_app(settings, desk.rules, transit_redis_url=settings.redis.url)
    other_pid = desk.api.identity[1] + 1  # a second process, as far as Redis can tell
    other_app[SERVICE].identity = (HOST, other_pid)
    other = ServiceServer(other_app)
    await other.start_server()
    key = Keys(settings.redis.prefix).replicas
    r = aredis.Redis.from_url(settings.redis.url or "")
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, str(other.make_url("")).rstrip("/"))
            await eventually(lambda: ready_to_log(client))

            async def both_ready() -> list[dict[str, Any]] | None:
                found = await _replicas(desk.client)
                return found if len(found) == 2 and all(s["ready"] for s in found) else None

            found = await eventually(both_ready)
            revision = desk.api.holder.current.revision  # type: ignore[union-attr]
            assert [(s["host"], s["pid"]) for s in found] == [
                (HOST, desk.api.identity[1]),
                (HOST, other_pid),
            ]
            for s in found:
                assert s["index_revision"] == revision
                assert s["port"] == settings.server.port
                assert s["spool_bytes"] == 0 and s["reason"] is None
                assert s["index_age_s"] >= 0 and s["freshness_lag_s"] >= 0
                assert time.time() - s["updated_at"] < FRESH_S
            # Either replica answers for both.
            assert [s["pid"] for s in await _replicas(client)] == [s["pid"] for s in found]

            # A process killed without its clean stop: its last status ages out, and goes.
            dead = dict(found[1], pid=99_999_999, updated_at=time.time() - FRESH_S - 1)
            await r.hset(key, f"{HOST}:99999999", json.dumps(dead))
            assert [s["pid"] for s in await _replicas(desk.client)] == [
                desk.api.identity[1],
                other_pid,
            ]
            assert await r.hexists(key, f"{HOST}:99999999") == 0
    finally:
        await other.close()
    # A clean stop takes its status away at once.
    assert [s["pid"] for s in await _replicas(desk.client)] == [desk.api.identity[1]]
    await r.aclose()

    for headers, code in ((POLICE, 403), (CAMERA, 403), ({}, 401)):
        status, _, _ = await desk.client.request("GET", "/v1/replicas", headers)
        assert status == code
    status, body, _ = await desk.client.request("GET", "/v1/replicas?x=1", OPERATOR)
    assert (status, body["field"]) == (422, "x")


async def test_no_redis_is_503(demo: Any) -> None:
    settings, rules = demo
    server = ServiceServer(create_app(settings, rules))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, str(server.make_url("")).rstrip("/"))
            status, body, _ = await client.request("GET", "/v1/replicas", OPERATOR)
            assert (status, body["error"]) == (503, "not_ready")
    finally:
        await server.close()
