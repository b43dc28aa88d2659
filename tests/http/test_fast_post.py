"""A plain native post is answered at its connection (http/fastpost.py), everything else by
aiohttp's route: over random requests (plain and not: other keys, headers, bodies, framing),
sent as raw bytes to a service answering them so and to a twin whose connections hand every
request to aiohttp, the answers must be the same bytes (but for the Date), and so must the
counters in /metrics. With the transit log running too, and in order when a client sends its
next request before the answer to a logged one."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.connections import FAST_POST
from enforcement.http.fastpost import FastPost, plain_post
from enforcement.http.service import SERVICE

from ..support.api import PERMITS, ServiceServer
from ..support.common import eventually, publish_permits

_EVENTS = itertools.count()
KEPT: dict[ServiceServer, Connection] = {}  # a keep-alive connection to each twin
_DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


def taker(server: ServiceServer) -> FastPost:
    """What answers the server's plain posts at their connection."""
    fast = server.app[FAST_POST]
    assert isinstance(fast, FastPost)
    return fast


async def exchange(port: int, *parts: bytes) -> bytes:
    """One answer to `parts` written in turn on a new connection, its Date blanked."""
    connection = Connection(port)
    try:
        return await connection.exchange(*parts)
    finally:
        connection.close()


class Connection:
    """A keep-alive connection to a server, opened again after an answer that closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def exchange(self, *parts: bytes) -> bytes:
        """One answer to `parts` written in turn, its Date blanked."""
        if self.streams is None:
            self.streams = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self.streams
        for i, part in enumerate(parts):
            if i:
                await asyncio.sleep(0.01)  # a second packet
            writer.write(part)
            await writer.drain()
        answer = await read_answer(reader)
        if answer.startswith(b"HTTP/1.0") or b"\r\nConnection: close\r\n" in answer:
            self.close()
        return answer

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


async def read_answer(reader: asyncio.StreamReader) -> bytes:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head, re.IGNORECASE)
    body = await reader.readexactly(int(length[1])) if length else b""
    return _DATE.sub(b"\r\nDate: -\r\n", head) + body


async def _twins(
    settings: Settings, rules: Rules, **app_args: Any
) -> tuple[ServiceServer, ServiceServer]:
    """The service as it runs, and its twin answering every request through aiohttp."""
    servers = []
    for fast in (True, False):
        app = create_app(settings, rules, **app_args)
        if not fast:
            del app[FAST_POST]
        server = ServiceServer(app)
        await server.start_server()
        servers.append(server)

    async def ready() -> bool:
        return all(s.app[SERVICE].holder.current is not None for s in servers)

    await eventually(ready)
    return servers[0], servers[1]


@pytest.fixture
async def twins(demo: tuple[Settings, Rules]) -> AsyncIterator[tuple[ServiceServer, ...]]:
    settings, rules = demo
    limits = {"key_rate": 50.0, "key_burst": 100, "max_body_bytes": 1024}  # its least
    settings = with_changes(settings, server=limits)
    publish_permits(settings, rules, PERMITS)
    servers = await _twins(settings, rules, record=False)
    fast = taker(servers[0])
    for s in servers:
        KEPT[s] = Connection(s.port or 0)
    yield servers
    for s in servers:
        KEPT.pop(s).close()
        await s.close()
    assert fast.answered > 0  # (test_plain_posts_are_answered_at_the_connection counts)


def _transit(camera: str, gate: str, plate: str, ago: int, confidence: float | None) -> bytes:
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=ago)
    body: dict[str, Any] = {
        "event_id": f"f-{next(_EVENTS)}",
        "camera": camera,
        "gate": gate,
        "plate": plate,
        "ts": ts.isoformat(),
    }
    if confidence is not None:
        body["confidence"] = confidence
    return json.dumps(body).encode()


transits = st.builds(
    _transit,
    st.sampled_from(["cam-1"] * 6 + ["cam-2", "cam 1", "x" * 80]),
    st.sampled_from(["PD-03"] * 6 + ["PD-01", "PD-09", ""]),
    st.sampled_from(["AB123CD", "ab123cd", "ZZ999ZZ", "AB123CO", "AB 123 CD", "", "FA001CU"]),
    st.sampled_from([30] * 6 + [600, -3600, 40 * 86400]),
    st.sampled_from([None, 0.9, 0.9, 0.9, 0.1, 1.5]),
)
bodies = st.one_of(
    transits,
    transits,
    transits,
    st.binary(max_size=30),
    st.just(b"[" * 3000),
    st.just(b'{"camera": 1}'),
    transits.map(lambda b: b[:-1] + b', "extra": [1, 2]}'),
    transits.map(lambda b: b[: len(b) // 2]),
)
# Header lines besides Content-Length: each drawn or left out, some in other spellings.
AUTHS = [
    "bearer demo-camera",
    "Bearer  demo-camera ",
    "Bearer demo-police",
    "Bearer demo-admin",
    "Bearer nope",
    "Basic ZGVtbw==",
    "",
]
TYPES = [
    "application/json; charset=utf-8",
    "Application/JSON",
    "text/plain",
]
HARMLESS = ["User-Agent: cam", "Accept:", "X-Forwarded-For: 10.0.0.1", "Connection: keep-alive"]
EXTRAS = [
    *HARMLESS,
    "Host: elsewhere",
    "User-Agent: cam",
    "Connection: Keep-Alive",
    "Connection: close",
    "Content-Encoding: identity",
    "Cookie: varco_session=x",
    "Transfer-Encoding: identity",
    "Transfer-Encoding: chunked",
    "Bad Header: x",
    "X-Ctl: a\x01b",
]


MUTATIONS = ["drop", "twice", "auth", "type", "extra", "extra", "extra", "target", "split", "body"]


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, ...]:
    """A plain post (differing in the transit, the key, spellings and harmless headers), as
    is or with one or two things changed that may make it not plain."""
    changes = draw(st.lists(st.sampled_from(MUTATIONS), max_size=2))
    body = draw(bodies if "body" in changes else transits)
    key = draw(st.sampled_from(["demo-camera", "demo-camera", "demo-admin"]))
    spaces = draw(st.sampled_from(["", " ", " ", "  \t"]))
    lines = [
        "Host: varco",
        f"Authorization: Bearer {key}",
        f"Content-Type:{spaces}application/json",
        f"Content-Length: {draw(st.sampled_from(['', '', '0']))}{len(body)}",
    ]
    lines += draw(st.lists(st.sampled_from(HARMLESS), max_size=2, unique=True))
    target = "/v1/transits"
    for change in changes:
        i = draw(st.integers(0, len(lines) - 1))
        if change == "drop":
            del lines[i]
        elif change == "twice":
            lines.append(lines[i])
        elif change == "auth":
            lines[1] = f"Authorization: {draw(st.sampled_from(AUTHS))}"
        elif change == "type":
            lines[2] = f"Content-Type:{spaces}{draw(st.sampled_from(TYPES))}"
        elif change == "extra":
            lines.append(draw(st.sampled_from(EXTRAS)))
        elif change == "target":
            target = draw(st.sampled_from(["/v1/transits?x=1", "/v1/transits/", "/v1/Transits"]))
    lines = draw(st.permutations(lines))
    case = draw(st.sampled_from(["as is", "as is", "lower", "upper"]))
    if case != "as is":  # the names' case: aiohttp's are case-insensitive, so are ours
        lines = [
            getattr(name, case)() + ":" + value
            for name, value in (line.split(":", 1) for line in lines)
        ]
    head = f"POST {target} HTTP/1.1\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n"
    if "split" in changes:
        return (head.encode(), body)  # the body in a second packet
    return (head.encode() + body,)


def _counters(metrics: str) -> list[str]:
    return [
        line
        for line in metrics.splitlines()
        if line.startswith(
            ("varco_http_requests_total", "varco_transits_total", "varco_rate_limited_total")
        )
    ]


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests(), fresh=st.sampled_from([False, False, False, True]))
async def test_answers_equal_aiohttps(
    twins: tuple[ServiceServer, ServiceServer], request: tuple[bytes, ...], fresh: bool
) -> None:
    fast, plain = twins
    if fresh:
        expected = await exchange(plain.port or 0, *request)
        got = await exchange(fast.port or 0, *request)
    else:  # on a connection kept alive: what cameras do
        expected = await KEPT[plain].exchange(*request)
        got = await KEPT[fast].exchange(*request)
    assert got == expected, request
    metrics = [await _get(s, "/metrics") for s in twins]
    assert _counters(metrics[0]) == _counters(metrics[1])


async def _get(server: ServiceServer, path: str) -> str:
    req = f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode()
    answer = await exchange(server.port or 0, req)
    return answer.split(b"\r\n\r\n", 1)[1].decode()


async def test_plain_posts_are_answered_at_the_connection(
    twins: tuple[ServiceServer, ServiceServer],
) -> None:
    fast, plain = twins
    taken = taker(fast)
    plates = ["AB123CD", "ab123cd", "ZZ999ZZ", "FA001CU", "AB123CO", "AB 123 CD", ""] * 3
    for plate in plates:
        post = _post(_transit("cam-1", "PD-03", plate, 30, 0.9))
        assert await KEPT[fast].exchange(post) == await KEPT[plain].exchange(post)
    # All but the national (CUDE) permit, the near-match, the read to normalise and the
    # unreadable one: those the Judge leaves to the route's Python path.
    assert taken.answered == 3 * 3
    long = _post(_transit("cam-1", "PD-03", "AB123CD", 30, 0.9)[:-1] + b" " * 1000 + b"}")
    answer = await KEPT[fast].exchange(long)  # past server.max_body_bytes: the route's 413
    assert answer == await KEPT[plain].exchange(long) and answer.startswith(b"HTTP/1.1 413")
    assert fast.app[SERVICE].metrics.requests == plain.app[SERVICE].metrics.requests
    assert fast.app[SERVICE].metrics.verdicts == plain.app[SERVICE].metrics.verdicts


def test_only_plain_posts_are_taken() -> None:
    body = _transit("cam-1", "PD-03", "AB123CD", 30, 0.9)
    head = (
        "POST /v1/transits HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer k\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    )
    assert plain_post(f"{head}\r\n".encode() + body) == ("Bearer k", body)
    assert plain_post(f"{head}Connection: keep-alive\r\n\r\n".encode() + body) is not None
    for refused in (
        f"{head}\r\n".encode() + body + b"POST",  # more than one request
        f"{head}\r\n".encode() + body[:-1],  # a body in parts
        f"{head}Connection: close\r\n\r\n".encode() + body,
        f"{head}Transfer-Encoding: chunked\r\n\r\n".encode() + body,
        f"{head} Folded: x\r\n\r\n".encode() + body,
        f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body,
        f"{head}X: \x00\r\n\r\n".encode() + body,
        f"{head.replace('Host: v', 'X: v')}\r\n".encode() + body,  # HTTP/1.1 needs a Host
        f"{head}Host: v\r\n\r\n".encode() + body,
        f"{head}User-Agent: a\r\nUser-Agent: a\r\n\r\n".encode() + body,  # aiohttp: 400
        (head + "X: y\r\n" * 40 + "\r\n").encode() + body,  # more than MAX_HEADERS
        f"{head.replace('HTTP/1.1', 'HTTP/1.0')}\r\n".encode() + body,
        f"{head.replace('POST', 'post')}\r\n".encode() + body,
    ):
        assert plain_post(refused) is None, refused


def _post(body: bytes, key: str = "demo-camera") -> bytes:
    return (
        f"POST /v1/transits HTTP/1.1\r\nHost: v\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
