"""The `world` fixture of the follow-up tests (tests/support/followup.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.followup import World, open_world


@pytest.fixture
async def world(demo: tuple[Settings, Rules], redis_server: EmbeddedRedis) -> AsyncIterator[World]:
    base, rules = demo
    async with open_world(base, rules, redis_server.url) as w:
        yield w
