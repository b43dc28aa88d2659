"""The connection's check before it refuses a request unparsed (connections.py,
`whole_request`) against aiohttp's own parser: whatever it takes for one whole request,
aiohttp parses as exactly one whole request with nothing left over; the rest of a request
split across packets (anywhere: in its line, headers or body) is never taken for one.
(A request aiohttp would answer 400, one without Host, say, may be refused 503 unparsed:
its framing is what matters here.)"""

from __future__ import annotations

import asyncio
from unittest import mock

from aiohttp.http_parser import HttpRequestParser
from hypothesis import given
from hypothesis import strategies as st

from enforcement.http.framing import whole_request

# Mostly what may be refused unparsed (repeated: drawn more often), and what may not.
METHODS = ("POST",) * 4 + ("GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "post")
TARGETS = ("/v1/transits",) * 4 + ("/v1/t?x=%20", "/healthz", "/health%7A", "*", "/a b")
VERSIONS = ("HTTP/1.1",) * 6 + ("HTTP/1.0", "http/1.1")
HEADERS = (
    "Content-Type: application/json",
    "Transfer-Encoding: chunked",
    "transfer-encoding: chunked",
    "Expect: 100-continue",
    "Connection: close",
    "connection: Keep-Alive",
    "Connection: upgrade",
    "Connection:close",
    "X-Note: Content-Length: 3",
)


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(max_size=12))
    lines = [f"{draw(st.sampled_from(METHODS))} {draw(st.sampled_from(TARGETS))} "]
    lines[0] += draw(st.sampled_from(VERSIONS)) + "\r\nHost: varco"  # else aiohttp's 400
    lines += draw(st.lists(st.sampled_from(HEADERS), max_size=2, unique=True))
    for _ in range(draw(st.sampled_from((1, 1, 1, 0, 2)))):  # mostly one; right or off by one
        name = draw(st.sampled_from(("Content-Length", "content-length", "CONTENT-LENGTH")))
        lines.insert(
            draw(st.integers(1, len(lines))),
            f"{name}: {len(body) + draw(st.sampled_from((0, 0, 0, 1, -1))) % 3}",
        )
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parsed(data: bytes, then: bytes) -> list[tuple[str, str, bytes, bool, bool]]:
    """What aiohttp makes of `data` followed by `then`: (method, path, body, body complete,
    should close) per message; a parse error as its class name."""

    async def parse() -> list[tuple[str, str, bytes, bool, bool]]:
        parser = HttpRequestParser(mock.Mock(), asyncio.get_running_loop(), 2**16)
        out = []
        for chunk in (data, then):
            try:
                messages, _, _ = parser.feed_data(chunk)
            except Exception as exc:
                return [(type(exc).__name__, "", b"", False, False)]
            for message, payload in messages:
                body = b"".join(getattr(payload, "_buffer", ()))
                out.append(
                    (message.method, message.path, body, payload.is_eof(), message.should_close)
                )
        return out

    return asyncio.run(parse())


@given(requests())
def test_what_the_connection_takes_for_one_request_aiohttp_parses_as_one(data: bytes) -> None:
    close = whole_request(data)
    if close is None:
        return
    # After `Connection: close` aiohttp takes no more bytes: nothing to be left over.
    then = b"" if close else b"GET /next HTTP/1.1\r\nHost: varco\r\n\r\n"
    first, *rest = parsed(data, then)
    assert first[3] and first[4] == close, (data, first)  # its body complete; close as asked
    assert data.endswith(first[2])
    assert [(m, p) for m, p, *_ in rest] == ([] if close else [("GET", "/next")]), rest


@given(requests(), st.data())
def test_the_rest_of_a_request_split_in_two_is_never_taken_for_one(
    data: bytes, split: st.DataObject
) -> None:
    at = split.draw(st.integers(1, len(data) - 1))
    assert whole_request(data[at:]) is None, (data, at)
