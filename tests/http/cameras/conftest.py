"""A real service on loopback with the demo cameras ([cameras.*] in examples/demo.toml) and
the camera tests' permit, as `cams`: a client that posts raw bodies the way cameras do
(tests/support/cameras.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app

from ...support.api import ServiceServer
from ...support.cameras import MAX_CAMERA_BODY, PERMITS, Cameras
from ...support.common import publish_permits


@pytest.fixture
async def cams(demo: tuple[Settings, Rules]) -> AsyncIterator[Cameras]:
    settings, rules = demo
    settings = with_changes(
        settings, server={"snapshot_poll_s": 0.05, "max_camera_body_bytes": MAX_CAMERA_BODY}
    )
    publish_permits(settings, rules, PERMITS)
    server = ServiceServer(create_app(settings, rules))
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
