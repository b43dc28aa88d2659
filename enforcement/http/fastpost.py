"""A camera's native post answered at its connection, as the route would answer it.

The camera's common request (`POST /v1/transits`, one JSON transit, a camera key, the whole
request in one read, a keep-alive connection) cost aiohttp more than its verdict: a message,
a header multidict, a URL, a payload stream, a request, a task, a response object and its
serialisation. Answered here it takes ~125 k instructions of the server's own code, against
~229 k through the route and ~199 k for an empty aiohttp handler (bench.compare_instructions).

The connection (connections.py) offers such a request here first, from a connection between
requests. `answer` takes it only when everything about it is plain (`plain_post`: one
compiled pattern per header line) and answers it as the route would (transits.py: the same
key, camera, rate and slot checks, the same Intake, counters and latency histogram); the
answer's bytes are aiohttp's, byte for byte (tests/http/test_fast_post.py compares them over
random requests, plain and not). Anything else (another route, a header it does not take or
that aiohttp would refuse, a body in parts, an unknown key, an invalid transit, a verdict the
Judge leaves to Python, no slot free) it declines before any side effect, and the
connection hands the bytes to aiohttp: errors are always the route's own. A logged post that
fails (a full spool) is handed over too, after its failure: the route, given it again as a
camera's retry, answers the error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Final

import msgspec
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE

from ..config.settings import ApiKey
from ..transits.intake import Intake
from . import errors
from .admission import Admission
from .auth import Keyring
from .connections import FastAnswer
from .metrics import Metrics
from .ratelimit import KeyRates
from .schemas import TRANSIT_DECODER, TransitIn

ROUTE: Final = "/v1/transits"
_LINE: Final = b"POST /v1/transits HTTP/1.1\r\n"
# One header line: a token, a colon, a value of visible characters, spaces and tabs (what
# aiohttp's parser accepts and more strictly: no obs-fold, no control character).
_HEADER: Final = re.compile(
    rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*"  # the name, and spaces before the value
    rb"([\x21-\x7e](?:[\t\x20-\x7e]*[\x21-\x7e])?)?[ \t]*\r\n"  # the value, trimmed
)
# The headers that must not repeat: aiohttp refuses a second of each (400), except
# Authorization and Connection, of which it would read the first (a second is declined here
# all the same). A request with a header in _DECLINED is aiohttp's to answer (or refuse);
# every other header is ignored, as the route ignores it.
_SINGLE: Final = frozenset(
    {
        b"content-length",
        b"content-location",
        b"content-range",
        b"content-type",
        b"etag",
        b"host",
        b"max-forwards",
        b"server",
        b"user-agent",
        b"authorization",
        b"connection",
    }
)
_DECLINED: Final = frozenset(
    {
        b"transfer-encoding",  # (aiohttp refuses a second one too)
        b"content-encoding",
        b"expect",
        b"upgrade",
        b"cookie",
        b"sec-websocket-key1",
    }
)
MAX_HEADERS: Final = 32
MAX_HEAD: Final = 4096  # a camera's head is ~200 bytes; longer ones go to aiohttp's limits
MAX_BODY: Final = 4096  # a native transit is ~200 bytes
JSON: Final = b"application/json"


def _head(body: bytes) -> bytes:
    """aiohttp's head for `web.Response(body=body, content_type="application/json")` on a
    keep-alive HTTP/1.1 request."""
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nDate: {rfc822_formatted_time()}\r\n"
        f"Server: {SERVER_SOFTWARE}\r\n\r\n"
    ).encode()


def plain_post(data: bytes, max_body: int = MAX_BODY) -> tuple[str, bytes] | None:
    """(Authorization, body) of `data` if it is exactly one plain native post: the request
    line, at most MAX_HEADERS headers, each well formed, one Host, no second of a header
    that must not repeat, none it declines,
    Content-Type exactly application/json, Connection absent or keep-alive, and the body
    exactly Content-Length bytes, at most `max_body`; None otherwise."""
    if not data.startswith(_LINE):
        return None
    end = data.find(b"\r\n\r\n", len(_LINE) - 2, MAX_HEAD)
    if end < 0:
        return None
    seen: dict[bytes, bytes] = {}
    at, stop = len(_LINE), end + 2
    match = _HEADER.match
    for _ in range(MAX_HEADERS + 1):
        if at == stop:
            break
        m = match(data, at, stop)
        if m is None:
            return None
        name = m[1].lower()
        if name in _DECLINED:
            return None
        if name in _SINGLE:
            if name in seen:
                return None
            seen[name] = m[2] or b""
        at = m.end()
    if at != stop:  # more than MAX_HEADERS
        return None
    length, auth = seen.get(b"content-length"), seen.get(b"authorization")
    if (
        length is None
        or auth is None
        or b"host" not in seen
        or seen.get(b"content-type") != JSON
        or not length.isdigit()
        or len(length) > 4
        or (b"connection" in seen and seen[b"connection"].lower() != b"keep-alive")
    ):
        return None
    body = data[end + 4 :]
    if len(body) != int(length) or len(body) > max_body:
        return None
    return auth.decode("ascii"), body


class FastPost:
    """The native post's route (transits.py) at the connection, for the plain requests."""

    def __init__(
        self,
        intake: Intake,
        keyring: Keyring,
        roles: frozenset[str],
        check: Callable[[ApiKey, TransitIn], None],
        metrics: Metrics,
        admission: Admission,
        max_body: int,
    ) -> None:
        self.intake, self.keyring, self.roles, self.check = intake, keyring, roles, check
        self.requests, self.latency = metrics.requests, metrics.latency[ROUTE]
        self.admission = admission
        self.rates: KeyRates | None = keyring.rates
        self.answered = 0
        self.max_body = min(MAX_BODY, max_body)  # the route's cap (413 past it), if lower

    def answer(self, data: bytes) -> FastAnswer:
        """The answer to `data` (one whole request, from a connection between requests), or
        None: aiohttp's to answer. Nothing is counted, charged or recorded unless it is
        answered here."""
        post = plain_post(data, self.max_body)
        if post is None:
            return None
        t0 = time.perf_counter()
        try:
            key = self.keyring.identify_header(post[0], self.roles)
            t = TRANSIT_DECODER.decode(post[1])
            self.check(key, t)
        except (errors.ApiError, msgspec.MsgspecError, RecursionError):
            return None
        rates = self.rates
        if rates is not None and not rates.take(key.id):
            return None  # the route answers 429 and counts it
        if not self.admission.take():
            self._undo(key, slot=False)
            return None
        if self.intake.transit_log is not None:
            return self._logged(key, t, t0)
        try:
            ts = t.ts.timestamp()
            body = self.intake.answer_native(
                t.camera, t.gate, t.event_id, t.plate, ts, t.confidence
            )
        except Exception:  # the route, given it, answers (and logs) the failure
            body = None
        if body is None:  # (nothing counted: the route's `accept` judges it)
            self._undo(key)
            return None
        self._done(t0)
        return _head(body) + body

    async def _logged(self, key: ApiKey, t: TransitIn, t0: float) -> bytes | None:
        try:
            body = await self.intake.answer_logged(t, t.ts.timestamp())
        except BaseException:  # the route, given the request again, answers the error
            self._undo(key)
            raise
        if body is None:
            self._undo(key)
            return None
        self._done(t0)
        return _head(body) + body

    def _undo(self, key: ApiKey, slot: bool = True) -> None:
        """Give back what `answer` took for a request it hands to aiohttp."""
        if slot:
            self.admission.leave()
        if self.rates is not None:
            self.rates.refund(key.id)

    def _done(self, t0: float) -> None:
        ended = time.perf_counter()
        self.admission.done(t0, ended)
        self.requests[(ROUTE, 200)] += 1
        self.latency.observe(ended - t0)
        self.answered += 1
