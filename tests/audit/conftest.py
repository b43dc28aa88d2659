"""The service with its audit trail in our Redis (`redis_service`) or in its data directory's
file (`file_service`), over the demo permits; and a client of our Redis (`r`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.api import PERMITS
from ..support.audit import Service, start
from ..support.common import publish_permits


@pytest.fixture
async def redis_service(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> AsyncIterator[Service]:
    settings, rules = demo
    publish_permits(settings, rules, PERMITS)
    server, session, service = await start(settings, rules, redis_server.url)
    yield service
    await session.close()
    await server.close()


@pytest.fixture
async def file_service(demo: tuple[Settings, Rules]) -> AsyncIterator[Service]:
    settings, rules = demo
    publish_permits(settings, rules, PERMITS)
    server, session, service = await start(settings, rules, None)
    yield service
    await session.close()
    await server.close()


@pytest.fixture
def r(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    yield client
    client.close()
