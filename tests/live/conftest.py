"""Live-permit fixtures: a real Redis server of our own per test (killable), the loader daemon
in a thread, and the service on loopback following that Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.replica.redis_server import EmbeddedRedis
from loader.postgres import PgPermitDB
from loader.watch import LoaderThread, WatchOptions

from ..api.test_api import Client


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def live_settings(request: pytest.FixtureRequest, demo: tuple[Settings, Rules],
                  redis_server: EmbeddedRedis) -> Settings:  # fmt: skip
    """The demo settings following our Redis, on each permit database backend."""
    settings, _ = demo
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("pg_url")
        with PgPermitDB(database_url, check_schema=False) as db:
            db.migrate()
    return with_changes(settings, redis={"url": redis_server.url},
                        database_url=database_url)  # fmt: skip


@pytest.fixture
def loader(live_settings: Settings, demo: tuple[Settings, Rules]) -> Iterator[LoaderThread]:
    options = WatchOptions(poll_s=0.05, history_days=100_000, max_shrink=1.0)
    assert live_settings.redis.url is not None
    thread = LoaderThread(live_settings, demo[1], live_settings.redis.url, options).start()
    yield thread
    thread.stop()


async def start_replica(settings: Settings, rules: Rules) -> tuple[TestServer, Client,
                                                                 aiohttp.ClientSession]:  # fmt: skip
    app = create_app(settings, rules, redis_url=settings.redis.url)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    return server, Client(session, str(server.make_url(""))), session


@pytest.fixture
async def replica(live_settings: Settings, demo: tuple[Settings, Rules]) -> AsyncIterator[Client]:
    server, client, session = await start_replica(live_settings, demo[1])
    yield client
    await session.close()
    await server.close()


async def eventually(probe: Any, timeout_s: float = 10.0, every_s: float = 0.02) -> Any:
    """Poll an async probe until it returns something truthy; its last value otherwise fails."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {value!r}")
        await asyncio.sleep(every_s)
