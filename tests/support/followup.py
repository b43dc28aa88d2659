"""The follow-up's world: the service on a real server and Redis, a follow-up worker on its own
connection, and a clock the tests move (the `world` fixture, tests/transits/conftest.py)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import redis.asyncio as aredis

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.service import SERVICE, Service
from enforcement.keys import Keys
from enforcement.transits.followup import FollowUp

from .api import ADMIN, CAMERA, NOW, Client, ServiceServer, transit
from .common import eventually, permit, publish_permits

PERMITS = [permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00")]
GRACE_S = 72 * 3600  # the demo zones' grace


class World:
    """The service, a follow-up worker on its own Redis connection, and a clock we move."""

    def __init__(
        self, client: Client, api: Service, followup: FollowUp, settings: Settings, rules: Rules
    ) -> None:
        self.client, self.api, self.followup = client, api, followup
        self.settings, self.rules = settings, rules
        self.now = NOW.timestamp() + 60

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def post(self, plate: str, **extra: Any) -> dict[str, Any]:
        status, body, _ = await self.client.request(
            "POST", "/v1/transits", CAMERA, json=transit(plate, **extra)
        )
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    async def run_followup(self) -> None:
        while await self.followup.consume(block_ms=None):
            pass
        while await self.followup.decide_due():
            pass

    async def violations(self, **query: str) -> list[dict[str, Any]]:
        status, body, _ = await self.client.request("GET", "/v1/violations", ADMIN, params=query)
        assert status == 200, body
        return body["violations"]  # type: ignore[no-any-return]


async def ready_to_log(client: Client) -> bool:
    status, body, _ = await client.request("GET", "/readyz")
    return status == 200 and body["transit_log"]["target"] == "redis"


@contextlib.asynccontextmanager
async def open_world(
    base: Settings, rules: Rules, redis_url: str, permits: list[Any] = PERMITS
) -> AsyncIterator[World]:
    """The service on loopback logging to the Redis at `redis_url`, over `permits` (snapshot
    files), and a follow-up worker on its own connection with the world's clock."""
    publish_permits(base, rules, permits)
    settings = with_changes(base, redis={"url": redis_url}, server={"snapshot_poll_s": 0.05})
    app = create_app(settings, rules, transit_redis_url=settings.redis.url)
    server = ServiceServer(app)
    await server.start_server()
    r = aredis.Redis.from_url(redis_url)
    async with aiohttp.ClientSession() as session:
        client = Client(session, str(server.make_url("")).rstrip("/"))
        client.settings, client.rules = settings, rules  # type: ignore[attr-defined]
        api = app[SERVICE]
        followup = FollowUp(
            r,
            Keys(settings.redis.prefix),
            rules,
            api.checker,
            api.holder,
            retention_allowed_s=settings.retention.allowed_s,
            retention_violations_s=settings.retention.violations_s,
            clock=lambda: w.now,
        )
        w = World(client, api, followup, settings, rules)
        await eventually(lambda: ready_to_log(client))
        api.intake.transit_log.clock = lambda: w.now  # type: ignore[union-attr]
        await followup.ensure_group()
        await eventually(lambda: ready_to_log(client))
        try:
            yield w
        finally:
            await r.aclose()
            await server.close()
