"""The HTTP API as the tests call it: credentials, the demo permits, camera transits, a client
that gives status, body and response; and what the replica tests wait for."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import redis
from aiohttp.test_utils import TestServer

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.connections import GuardedRunner
from enforcement.http.service import SERVICE
from enforcement.keys import Keys
from enforcement.transits.record import DECODE_RECORD, TransitRecord
from loader.database import open_db
from loader.store import PermitRow

from .common import permit

CAMERA = {"Authorization": "Bearer demo-camera"}
POLICE = {"Authorization": "Bearer demo-police"}
ADMIN = {"Authorization": "Bearer demo-admin"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PERMITS = [
    permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00"),
    permit(
        "CUDE-1",
        "",
        "CUDE",
        "2025-01-01T00:00:00+01:00",
        "2035-01-01T00:00:00+01:00",
        source="cude",
        plates=(("FA001CU", True), ("FA002CU", False)),
    ),
]


_EVENTS = itertools.count()


class ServiceServer(TestServer):
    """aiohttp's TestServer on the service's own runner (connections.GuardedRunner): bounded
    connections, bodies decompressed by the handlers, as `varco serve` runs them."""

    def __init__(self, app: Any) -> None:
        super().__init__(app, host="127.0.0.1")

    async def _make_runner(self, **kwargs: Any) -> GuardedRunner:
        return GuardedRunner(self.app, self.app[SERVICE].settings.server)


def transit(plate: str, gate: str = "PD-03", **extra: Any) -> dict[str, Any]:
    """A new camera event each call (the log answers a repeated event id with its first
    verdict: see tests/transits/test_log.py)."""
    body = {
        "event_id": f"e-{plate}-{next(_EVENTS)}",
        "camera": "cam-1",
        "gate": gate,
        "plate": plate,
        "ts": NOW.isoformat(),
        "confidence": 0.9,
    }
    body.update(extra)
    return body


class Client:
    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session, self.base = session, base

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        async with self.session.request(method, self.base + path, headers=headers, **kw) as r:
            raw = await r.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode()
            return r.status, body, r


async def wait_ready(client: Client, revision: int | None = None) -> dict[str, Any]:
    for _ in range(200):  # bounded: 10 s
        status, body, _ = await client.request("GET", "/readyz")
        if status == 200 and (revision is None or body["index_revision"] == revision):
            return body  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"not ready: {body}")


async def start_replica(
    settings: Settings, rules: Rules
) -> tuple[TestServer, Client, aiohttp.ClientSession]:
    app = create_app(settings, rules, redis_url=settings.redis.url)
    server = ServiceServer(app)
    await server.start_server()
    session = aiohttp.ClientSession()
    return server, Client(session, str(server.make_url(""))), session


# -- permits written for a replica to follow, its verdicts and readiness; the transit log ----


def upsert(settings: Settings, *rows: PermitRow) -> int:
    with open_db(settings) as db:
        db.upsert(rows)
        return db.revision


async def verdict(client: Client, plate: str) -> dict[str, Any]:
    status, body, _ = await client.request("POST", "/v1/transits", CAMERA, json=transit(plate))
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def ready(client: Client, min_revision: int = 0) -> dict[str, Any] | None:
    """/readyz details once ready with at least `min_revision` (permits upserted before the
    first snapshot come in it or through the stream, as the loader's timing has it)."""
    status, body, _ = await client.request("GET", "/readyz")
    if status == 200 and body["index_revision"] >= min_revision:
        return body  # type: ignore[no-any-return]
    return None


def stream(settings: Settings) -> list[TransitRecord]:
    """The transit records in the settings' Redis stream, in order."""
    r = redis.Redis.from_url(settings.redis.url or "")
    try:
        return [DECODE_RECORD(f[b"r"]) for _, f in r.xrange(Keys(settings.redis.prefix).transits)]
    finally:
        r.close()


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[tuple[ServiceServer, Client]]:
    """`app` on the service's own runner on loopback, ready (an index loaded), and a client
    whose connection pool is large enough for a flood."""
    server = ServiceServer(app)
    await server.start_server()
    connector = aiohttp.TCPConnector(limit=1000)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            client = Client(session, str(server.make_url("")).rstrip("/"))
            await wait_ready(client)
            yield server, client
    finally:
        await server.close()
