"""Every phase of a connection bounded, through real sockets against the service's own runner
(enforcement/http/connections.py): a head sent a byte at a time, a body announced and never
sent, idle connections, more connections than the cap, malformed requests, clients that
leave mid-request. Limits are shrunk so that each case takes about a second."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.connections import FAST_POST
from enforcement.http.fastpost import FastPost

from ..support.api import PERMITS, Client, ServiceServer, transit, wait_ready
from ..support.common import publish_permits

LIMITS = {
    "snapshot_poll_s": 0.05,
    "header_timeout_s": 0.5,
    "body_timeout_s": 0.5,
    "keepalive_timeout_s": 1.0,
    "max_connections": 8,
    "max_body_bytes": 64 * 1024,
}
KEY = b"Authorization: Bearer demo-camera\r\n"


class Served:
    def __init__(self, server: ServiceServer, client: Client) -> None:
        self.server, self.client = server, client
        self.host, self.port = "127.0.0.1", server.port
        self.writers: list[asyncio.StreamWriter] = []

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.writers.append(writer)
        return reader, writer

    def close(self) -> None:
        for writer in self.writers:
            writer.close()

    @property
    def guard(self) -> Any:
        return self.server.runner.guarded  # type: ignore[union-attr]


@pytest.fixture
async def served(demo: tuple[Settings, Rules]) -> AsyncIterator[Served]:
    settings, rules = demo
    settings = with_changes(settings, server=LIMITS)
    publish_permits(settings, rules, PERMITS)
    server = ServiceServer(create_app(settings, rules))
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        client = Client(session, str(server.make_url("")).rstrip("/"))
        await wait_ready(client)
        served = Served(server, client)
        yield served
        served.close()
    await server.close()


async def closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection, failing past `seconds`."""
    return await asyncio.wait_for(reader.read(), seconds)


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def body_of(raw: bytes) -> Any:
    return json.loads(raw.partition(b"\r\n\r\n")[2])


async def test_a_head_sent_a_byte_at_a_time_is_cut_off(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /v1/transits HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()

    async def trickle() -> None:
        for i in range(100):  # one header every 0.1 s, for ever as far as the server knows
            writer.write(f"X-Slow-{i}: y\r\n".encode())
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    try:
        raw = await closed_within(reader, 3)
    finally:
        trickling.cancel()
    assert time.monotonic() - t0 < 1.5
    assert status_of(raw) == 408
    assert body_of(raw)["error"] == "request_timeout"


async def test_a_body_announced_and_never_sent_is_cut_off(served: Served) -> None:
    reader, writer = await served.open()
    body = json.dumps(transit("AB123CD")).encode()
    writer.write(
        b"POST /v1/transits HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + KEY
        + f"Content-Length: {len(body) + 100}\r\n\r\n".encode()
        + body
    )
    t0 = time.monotonic()
    await closed_within(reader, 3)  # nothing to answer: the request never arrived whole
    assert time.monotonic() - t0 < 1.5
    assert served.guard.timed_out >= 1


async def test_a_content_length_larger_than_the_cap_is_refused_at_once(served: Served) -> None:
    """Content-Length: 10^12 and no body: 413 at once, not a wait for ever."""
    reader, writer = await served.open()
    writer.write(
        b"POST /v1/transits HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + KEY
        + b"Content-Length: 1000000000000\r\n\r\n"
    )
    t0 = time.monotonic()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    assert time.monotonic() - t0 < 0.4
    assert status_of(head) == 413
    await closed_within(reader, 2)  # after a short lingering close, not when 10^12 bytes came


async def test_idle_connections_are_closed(served: Served) -> None:
    never = await served.open()  # connects and says nothing
    used = await served.open()  # one request, then idle
    used[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    t0 = time.monotonic()
    assert status_of(await asyncio.wait_for(used[0].readuntil(b"\r\n\r\n"), 2)) == 200
    await closed_within(never[0], 3)
    await closed_within(used[0], 3)
    assert time.monotonic() - t0 < 2.0  # keepalive_timeout 1 s


async def test_a_connection_idle_after_posts_answered_by_it_is_closed(served: Served) -> None:
    """The connection answers a camera's plain posts itself (fastpost.py): answering keeps it
    open, being idle after still closes it within keepalive_timeout."""
    reader, writer = await served.open()
    fast = served.server.app[FAST_POST]
    assert isinstance(fast, FastPost)
    for _ in range(4):
        body = json.dumps(transit("AB123CD")).encode()
        writer.write(
            b"POST /v1/transits HTTP/1.1\r\nHost: x\r\n"
            + KEY
            + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            + body
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert status_of(head) == 200
        await reader.readexactly(int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
        await asyncio.sleep(0.4)  # 1.6 s in all, longer than keepalive_timeout (1 s)
    assert fast.answered == 4
    t0 = time.monotonic()
    assert await closed_within(reader, 3) == b""
    assert 0.5 < time.monotonic() - t0 < 2.0


async def test_past_max_connections_a_new_one_gets_503_and_cameras_get_through_after(
    served: Served,
) -> None:
    held = [await served.open() for _ in range(LIMITS["max_connections"])]
    await asyncio.sleep(0.05)
    reader, _ = await served.open()
    raw = await closed_within(reader, 2)
    assert status_of(raw) == 503
    assert b"Retry-After: 1" in raw and body_of(raw)["error"] == "overloaded"
    assert served.guard.refused >= 1
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.1)
    status, body, _ = await served.client.request(
        "POST", "/v1/transits", {"Authorization": "Bearer demo-camera"}, json=transit("AB123CD")
    )
    assert status == 200, body


async def test_slow_and_idle_clients_cannot_starve_a_camera(served: Served) -> None:
    """Slowloris and idle sockets, many times the cap: each is closed on its deadline, so a
    camera retrying is answered within about one header timeout."""
    attackers = []
    for _ in range(3 * LIMITS["max_connections"]):
        _, writer = await served.open()
        writer.write(b"POST /v1/transits HTTP/1.1\r\n")
        attackers.append(writer)
    t0 = time.monotonic()
    while True:
        try:
            status, _, _ = await served.client.request(
                "POST",
                "/v1/transits",
                {"Authorization": "Bearer demo-camera"},
                json=transit("AB123CD"),
            )
        except aiohttp.ClientError:
            status = 0
        if status == 200:
            break
        assert time.monotonic() - t0 < 3, "the camera was starved"
        await asyncio.sleep(0.1)
    for writer in attackers:
        writer.close()


async def test_a_malformed_request_gets_a_json_400(served: Served) -> None:
    reader, writer = await served.open()
    writer.write(b"POST /v1/transits HTTP/1.1\r\nHost: x\r\nBad\x00Header: Bearer s3cret\r\n\r\n")
    raw = await closed_within(reader, 2)
    assert status_of(raw) == 400
    reply = body_of(raw)
    assert reply["error"] == "bad_request"
    assert "s3cret" not in json.dumps(reply)


async def test_a_client_leaving_mid_body_is_no_server_error(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    _, writer = await served.open()
    writer.write(
        b"POST /v1/transits HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + KEY
        + b'Content-Length: 500\r\n\r\n{"event_id": "'
    )
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.close()
    await asyncio.sleep(0.2)
    status, metrics, _ = await served.client.request("GET", "/metrics")
    assert status == 200
    lines = [ln for ln in metrics.splitlines() if 'route="/v1/transits"' in ln]
    assert not [ln for ln in lines if 'status="500"' in ln], lines
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]
