"""A real service on loopback with the demo cameras ([cameras.*] in examples/demo.toml) and
two permits, and a client that posts raw bodies the way cameras do."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app

from ..conftest import permit, publish_permits

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
PERMITTED, UNKNOWN = "AB123CD", "ZZ999ZZ"
PERMITS = [permit("RES-1", PERMITTED, "1", "2020-01-01T00:00:00+01:00")]
MAX_CAMERA_BODY = 1 << 20  # small, so the oversized-body test stays quick


def key(vendor: str) -> dict[str, str]:
    return {"Authorization": f"Bearer demo-{vendor}"}


class Cameras:
    def __init__(self, session: aiohttp.ClientSession, base: str, settings: Settings) -> None:
        self.session, self.base, self.settings = session, base, settings

    async def post(self, path: str, data: Any = None, headers: dict[str, str] | None = None,
                   **kw: Any) -> tuple[int, Any]:  # fmt: skip
        async with self.session.post(self.base + path, data=data, headers=headers, **kw) as r:
            raw = await r.read()
            try:
                return r.status, json.loads(raw)
            except ValueError:
                return r.status, raw.decode(errors="replace")

    async def get(self, path: str) -> tuple[int, Any]:
        async with self.session.get(self.base + path) as r:
            return r.status, await r.json() if r.content_type == "application/json" else None


@pytest.fixture
async def cams(demo: tuple[Settings, Rules]) -> AsyncIterator[Cameras]:
    settings, rules = demo
    settings = with_changes(settings, server={
        "snapshot_poll_s": 0.05, "max_camera_body_bytes": MAX_CAMERA_BODY})  # fmt: skip
    publish_permits(settings, rules, PERMITS)
    server = TestServer(create_app(settings, rules), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = Cameras(session, str(server.make_url("")).rstrip("/"), settings)
            for _ in range(200):  # bounded: 10 s
                status, body = await client.get("/readyz")
                if status == 200:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"not ready: {body}")
            yield client
    finally:
        await server.close()
