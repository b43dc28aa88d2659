"""Keep-alive framing across admission's refusals (connections.py answers a request that
arrives whole before aiohttp parses it): on one connection, requests admitted and refused in
turn, split across packets and pipelined, each answered by its own answer, in order, through
the service's own runner on loopback. An answer taken from a leftover would answer one car
with another car's verdict."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.service import SERVICE

from ..support.api import PERMITS, serving, transit
from ..support.common import publish_permits
from .test_admission import shed_counts

OPEN = 1000  # the fixed limit while admitting; 0 refuses every metered request


def post(plate: str, extra: bytes = b"") -> tuple[bytes, str]:
    """A camera post as raw bytes, and its event id."""
    body = transit(plate)
    raw = json.dumps(body).encode()
    head = (
        b"POST /v1/transits HTTP/1.1\r\nHost: varco\r\nAuthorization: Bearer demo-camera\r\n"
        b"Content-Type: application/json\r\n%sContent-Length: %d\r\n\r\n" % (extra, len(raw))
    )
    return head + raw, body["event_id"]


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def answer(self, head_only: bool = False) -> tuple[int, bytes, Any]:
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        status = int(head[9:12])
        if head_only:
            return status, head, None
        length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)[1])  # type: ignore[index]
        return status, head, json.loads(await self.reader.readexactly(length))

    async def admitted(self, event_id: str) -> None:
        status, _, body = await self.answer()
        assert (status, body["event_id"]) == (200, event_id), body

    async def refused(self) -> bytes:
        status, head, body = await self.answer()
        assert status == 503 and body["error"] == "overloaded", body
        return head


async def test_admitted_and_refused_in_turn_on_one_connection_each_get_their_own_answer(
    demo: tuple[Settings, Rules],
) -> None:
    settings, rules = demo
    settings = with_changes(
        settings,
        server={"snapshot_poll_s": 0.05, "target_latency_s": 0.0, "max_in_flight": OPEN},
    )
    publish_permits(settings, rules, PERMITS)
    app = create_app(settings, rules, record=False)
    async with serving(app) as (server, client):
        admission = app[SERVICE].admission

        def limit(n: int) -> None:
            admission.limit = n

        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        conn = Conn(reader, writer)

        # Whole requests, one at a time: the refusals are the connection's own.
        for plate, admit in (("AB123CD", True), ("AC001DE", False), ("AC002DE", True)):
            limit(OPEN if admit else 0)
            raw, event_id = post(plate)
            writer.write(raw)
            if admit:
                await conn.admitted(event_id)
            else:
                head = await conn.refused()
                assert b"Retry-After: 1\r\n" in head and b"Connection: close" not in head
        refused_here = shed_counts((await client.request("GET", "/metrics"))[1])["in_flight"]
        assert refused_here == 1

        # One request whole and the first bytes of the next in one packet, the rest of that
        # one in the next packet: the rest is no request of its own, aiohttp frames it.
        limit(OPEN)
        first, first_id = post("AC003DE")
        second, _ = post("AC004DE")
        writer.write(first + second[:2])
        await conn.admitted(first_id)
        limit(0)
        writer.write(second[2:])
        await conn.refused()  # by its route: its start was with aiohttp's parser
        limit(OPEN)
        third, third_id = post("AC005DE")
        writer.write(third)
        await conn.admitted(third_id)

        # Pipelined: two requests in one packet, refused, then one admitted.
        limit(0)
        writer.write(post("AC006DE")[0] + post("AC007DE")[0])
        await conn.refused()
        await conn.refused()
        limit(OPEN)
        raw, event_id = post("AC008DE")
        writer.write(raw)
        await conn.admitted(event_id)

        # HEAD is answered without a body: refused by its route, never by the connection
        # (a refusal's JSON after its head would be read as the next request's answer).
        limit(0)
        writer.write(b"HEAD /v1/transits/search HTTP/1.1\r\nHost: varco\r\n\r\n")
        assert (await conn.answer(head_only=True))[0] == 503
        limit(OPEN)
        raw, event_id = post("AC009DE", b"Connection: keep-alive\r\n")
        writer.write(raw)
        await conn.admitted(event_id)

        # Connection: close is honoured after a refusal.
        limit(0)
        writer.write(post("AC010DE", b"Connection: close\r\n")[0])
        head = await conn.refused()
        assert b"Connection: close\r\n" in head
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        counts = shed_counts((await client.request("GET", "/metrics"))[1])
        # At the connection: the first refusal and the last; the others by their routes.
        assert counts["in_flight"] == 2 and counts["queue_full"] == 4, counts
