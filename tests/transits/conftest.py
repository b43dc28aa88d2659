"""The `world` fixture of the follow-up tests (tests/support/followup.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aredis

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.service import SERVICE
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.transits.followup import FollowUp

from ..support.api import Client, ServiceServer
from ..support.common import eventually, publish_permits
from ..support.followup import PERMITS, World, ready_to_log


@pytest.fixture
async def world(demo: tuple[Settings, Rules], redis_server: EmbeddedRedis) -> AsyncIterator[World]:
    base, rules = demo
    publish_permits(base, rules, PERMITS)
    settings = with_changes(base, redis={"url": redis_server.url}, server={"snapshot_poll_s": 0.05})
    app = create_app(settings, rules, transit_redis_url=settings.redis.url)
    server = ServiceServer(app)
    await server.start_server()
    r = aredis.Redis.from_url(redis_server.url)
    async with aiohttp.ClientSession() as session:
        client = Client(session, str(server.make_url("")).rstrip("/"))
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
        yield w
    await r.aclose()
    await server.close()
