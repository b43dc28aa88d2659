"""A camera's plain post answered at its connection with the transit log running
(http/fastpost.py, a task per post): the same bytes as a twin answering through aiohttp,
retries and corrections too; a request sent behind a logged one answered after it; and a
graceful shutdown waits for a logged answer on its way."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.connections import FAST_POST
from enforcement.http.service import SERVICE, Service
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.api import PERMITS, ServiceServer
from ..support.common import eventually, publish_permits
from .test_fast_post import _get, _post, _transit, exchange, read_answer, taker


@pytest.fixture
async def logged_twins(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis, tmp_path: Path
) -> AsyncIterator[tuple[ServiceServer, ...]]:
    base, rules = demo
    servers = []
    for name in ("fast", "plain"):
        settings = with_changes(
            base,
            redis={"url": redis_server.url, "prefix": name},
            storage={"data_dir": tmp_path / name, "database_path": tmp_path / name / "p.db"},
        )
        publish_permits(settings, rules, PERMITS)
        app = create_app(settings, rules, transit_redis_url=redis_server.url)
        if name == "plain":
            del app[FAST_POST]
        server = ServiceServer(app)
        await server.start_server()
        servers.append(server)

    async def ready() -> bool:
        for s in servers:
            readyz = json.loads(await _get(s, "/readyz"))
            if readyz.get("transit_log", {}).get("target") != "redis":
                return False
        return True

    await eventually(ready)
    yield tuple(servers)
    for s in servers:
        await s.close()


async def test_logged_answers_equal_aiohttps_retries_too(
    logged_twins: tuple[ServiceServer, ServiceServer],
) -> None:
    fast, plain = logged_twins
    posts = [_transit("cam-1", "PD-03", p, 30, 0.9) for p in ("AB123CD", "ZZ999ZZ", "AB123CO")]
    posts += posts[:2]  # retries: answered with their first verdict and id
    posts.append(posts[1].replace(b"ZZ999ZZ", b"ZZ999ZY"))  # a correction of one event
    for body in posts:
        expected = await exchange(plain.port or 0, _post(body))
        assert await exchange(fast.port or 0, _post(body)) == expected
        assert expected.startswith(b"HTTP/1.1 200 OK\r\n"), expected
    counts = [s.app[SERVICE].metrics.requests for s in logged_twins]
    assert counts[0][("/v1/transits", 200)] == counts[1][("/v1/transits", 200)] == len(posts)
    assert taker(fast).answered == len(posts) - 1  # all but the near-match


async def test_a_request_sent_before_a_logged_answer_waits_for_it(
    logged_twins: tuple[ServiceServer, ServiceServer],
) -> None:
    fast = logged_twins[0]
    service: Service = fast.app[SERVICE]
    reader, writer = await asyncio.open_connection("127.0.0.1", fast.port)
    try:
        bodies = [_transit("cam-1", "PD-03", p, 30, 0.9) for p in ("AB123CD", "ZZ999ZZ", "FA001CU")]
        for body in bodies:  # each its own packet, none waiting for the answer before
            writer.write(_post(body))
            await writer.drain()
        for body in bodies:
            answer = await read_answer(reader)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
            event = json.loads(body)["event_id"]
            assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["event_id"] == event
    finally:
        writer.close()
    assert service.metrics.requests[("/v1/transits", 200)] == 3
    assert service.admission.in_flight == 0


async def test_a_graceful_shutdown_writes_a_logged_answer_on_its_way(
    logged_twins: tuple[ServiceServer, ServiceServer], redis_server: EmbeddedRedis
) -> None:
    fast = logged_twins[0]
    reader, writer = await asyncio.open_connection("127.0.0.1", fast.port)
    r = redis.Redis.from_url(redis_server.url)
    try:
        r.execute_command("CLIENT", "PAUSE", 500, "WRITE")  # the group waits for Redis
        writer.write(_post(_transit("cam-1", "PD-03", "AB123CD", 30, 0.9)))
        await writer.drain()
        await asyncio.sleep(0.1)  # taken, and waiting for its group
        assert taker(fast).answered == 0
        closing = asyncio.create_task(fast.close())  # SIGTERM's graceful shutdown
        answer = await read_answer(reader)
        await closing
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
        assert taker(fast).answered == 1
    finally:
        writer.close()
        r.close()
