"""The demo service on loopback over the demo permits (tests/support/api.py), as `api`; the
desk's world (a Redis, a follow-up worker, an operator key), as `desk`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.api import PERMITS, Client, ServiceServer, wait_ready
from ..support.common import publish_permits
from ..support.desk import desk_settings
from ..support.followup import World, open_world


@pytest.fixture
async def api(demo: tuple[Settings, Rules]) -> AsyncIterator[Client]:
    settings, rules = demo
    settings = with_changes(
        settings, server={"snapshot_poll_s": 0.05, "max_body_bytes": 256 * 1024}
    )
    publish_permits(settings, rules, PERMITS)
    server = ServiceServer(create_app(settings, rules))
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        client = Client(session, str(server.make_url("")).rstrip("/"))
        client.settings, client.rules = settings, rules  # type: ignore[attr-defined]
        await wait_ready(client)
        yield client
    await server.close()


@pytest.fixture
async def desk(demo: tuple[Settings, Rules], redis_server: EmbeddedRedis) -> AsyncIterator[World]:
    """The follow-up's world with the desk's operator key (tests/support/desk.py)."""
    base, rules = demo
    async with open_world(desk_settings(base), rules, redis_server.url) as w:
        yield w
