"""Connections, bounded: every phase timed, a cap on how many, nothing raw in the log.

aiohttp alone waits as long as a client likes: an idle keep-alive connection lives an hour,
a request head sent a byte at a time has no deadline, and a body announced but never sent is
waited for until the handler gives up (it does not). On a network of cameras and a proxy to
the internet that is a way to take every file descriptor. So the service runs on this
module's server, which keeps aiohttp's request handling and adds, per connection:

- header_timeout: a request's line and headers must arrive within it of its first byte;
- body_timeout: its body within it of its head (a body that arrived with its head, the usual
  camera post, costs no timer);
- keepalive_timeout: an idle connection, or one that never completes a request head, is
  closed after it (aiohttp's own keep-alive timer, set here, not left at an hour);
- max_connections: past it a new connection is answered 503 with Retry-After and closed
  before anything of it is read;
- admission (admission.py): while the process refuses new requests, a request that arrives
  whole on an idle connection is answered 503 `overloaded` here, the connection kept, before
  aiohttp parses it: refusing costs two compiled patterns and a write, not a routed request;
- a camera's plain native post that arrives whole is answered by fastpost.py, as its route
  would, before aiohttp sees it; bytes that follow it on the connection wait for its answer.

A connection that runs out of time is closed (a head with 408 first); its handler, if one
runs, sees the connection reset. Bodies are not decompressed here (`auto_decompress=False`):
a request is authenticated before its body is inflated, by body.py, under a size cap.

aiohttp answers a malformed request itself and logs it with the offending bytes (a Bearer
key, a URL token, a plate). `handle_error` here answers in the API's JSON error format and
logs only the kind of error. These are aiohttp's documented extension points (`Server`,
`RequestHandler`, `AppRunner`); tests/http/test_connections.py drives each bound through a
real socket, so an aiohttp upgrade that changes them fails there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any, Final, Protocol

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from ..config.settings import ServerSettings
from .admission import ADMISSION, Admission
from .framing import UNMETERED_GETS, whole_request
from .schemas import ENCODER, ErrorOut

log = logging.getLogger(__name__)


# A request answered at its connection: the whole response now, a coroutine whose result is
# (None then: aiohttp's to answer), or None (aiohttp's).
FastAnswer = bytes | Coroutine[Any, Any, bytes | None] | None


class FastAnswers(Protocol):  # fastpost.FastPost
    def answer(self, data: bytes) -> FastAnswer: ...


FAST_POST: Final = web.AppKey("fast_post", FastAnswers)  # set by the route (transits.py)


def _raw_response(
    status: str, code: str, detail: str, retry_after: int | None = None, close: bool = True
) -> bytes:
    """A whole HTTP/1.1 error response, written straight to the socket: for a connection no
    request of which is answered (`close`), or a request refused before it is parsed."""
    body = ENCODER.encode(ErrorOut(code, detail))
    retry = f"Retry-After: {retry_after}\r\n" if retry_after is not None else ""
    connection = "Connection: close\r\n" if close else ""
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{retry}"
        f"Content-Length: {len(body)}\r\n{connection}\r\n"
    )
    return head.encode() + body


_HEAD_TIMEOUT: Final = _raw_response(
    "408 Request Timeout",
    "request_timeout",
    "the request head did not arrive within server.header_timeout",
)


_parse: Final = RequestHandler.data_received


class GuardedHandler(RequestHandler):
    """aiohttp's connection protocol with deadlines for the request head and body, and a
    refusal when the server already holds max_connections."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._refused = False
        self.arrived = 0.0  # perf_counter when its current request's first bytes came
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        # While a request answered here (fastpost.py) waits for its log: the bytes after it
        self._fast_pending: list[bytes] | None = None
        self._fast_task: asyncio.Task[bytes | None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.open >= guard.limits.max_connections:
            self._refused = True
            guard.refused += 1
            assert isinstance(transport, asyncio.Transport)
            transport.write(guard.refusal)
            transport.close()
            return
        guard.open += 1
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:  # never registered with aiohttp's server
            return
        self._guard.open -= 1
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._fast_pending is not None:  # bytes after a request answered here wait for it
            self._fast_pending.append(data)
            return
        guard = self._guard
        admission = guard.admission
        if (
            admission is not None
            and self._waiter is not None  # between requests: the handler waits for one
            and self._head_timer is None  # and no part of a head came before these bytes
            and self.transport is not None
            and not self._waiter.done()
        ):
            why = admission.refuse_whole()
            close = whole_request(data) if why is not None else None
            if why is not None and close is not None:  # one whole request, refused unparsed
                admission.shed[why] += 1
                if close:
                    self.transport.write(guard.overloaded_close)
                    self.force_close()
                    return
                self.transport.write(guard.overloaded)
                self._in_use()
                return
            if guard.fast is not None and self._answer_fast(guard.fast, data):
                return
            if not data.startswith(UNMETERED_GETS):  # these take no slot
                admission.arriving += 1
                # Its latency, for the adaptive limit, runs from here: the loop turns it
                # waits before its handler starts are what grows when the process is
                # overloaded.
                self.arrived = time.perf_counter()
        self._to_aiohttp(data)

    def _in_use(self) -> None:
        """A request was answered here: the connection is in use, not idle, for aiohttp's
        keep-alive timer."""
        self._next_keepalive_close_time = self._loop.time() + self._keepalive_timeout

    def _answer_fast(self, fast: FastAnswers, data: bytes) -> bool:
        """Whether `data` was answered (or is being answered) by fastpost.py."""
        answer = fast.answer(data)
        if answer is None:
            return False
        assert self.transport is not None
        self._in_use()
        if isinstance(answer, bytes):
            self.transport.write(answer)
            return True
        # Logged: written once its group is; until then the connection's next bytes wait.
        self._fast_pending = []
        task = self._fast_task = self._loop.create_task(answer)
        task.add_done_callback(lambda done: self._fast_done(done, data))
        return True

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """aiohttp's graceful close, after a logged answer on its way here is written (aiohttp
        waits for its own handlers only)."""
        task = self._fast_task
        if task is not None and not task.done():
            await asyncio.wait((task,), timeout=timeout)
            await asyncio.sleep(0)  # its done callback writes the answer
        await super().shutdown(timeout)

    def _fast_done(self, task: asyncio.Task[bytes | None], data: bytes) -> None:
        pending, self._fast_pending = self._fast_pending or [], None
        if self.transport is None or self.transport.is_closing():
            return  # the client left: recorded all the same, as the route's would be
        if task.cancelled():
            return self.force_close()
        answer = None if task.exception() is not None else task.result()
        if answer is None:  # the route's to answer: an error, or what the Judge declined
            self._to_aiohttp(data)
        else:
            self.transport.write(answer)
            self._in_use()
        for later in pending:
            self.data_received(later)

    def _process_keepalive(self) -> None:
        if self._fast_pending is None:
            return super()._process_keepalive()
        # answering: not idle
        self._keepalive_handle = self._loop.call_later(
            self._keepalive_timeout, self._process_keepalive
        )

    def _to_aiohttp(self, data: bytes) -> None:
        _parse(self, data)  # aiohttp's own; once per packet, so not through super()
        if self._messages:  # a request head is complete: its body may still be coming
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            payload = self._messages[-1][1]
            if not payload.is_eof():
                # A new head means the body before it is complete: its timer, if any, done.
                if self._body_timer is not None:
                    self._body_timer.cancel()
                self._body_timer = self._loop.call_later(
                    self._guard.limits.body_timeout_s, self._body_expired, payload
                )
        elif self._waiter is not None and self._head_timer is None:
            # Between requests, bytes that are not yet a whole head: the head's clock starts.
            self._head_timer = self._loop.call_later(
                self._guard.limits.header_timeout_s, self._head_expired
            )

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._waiter is not None and not self._waiter.done() and self.transport is not None:
            self._guard.timed_out += 1
            self.transport.write(_HEAD_TIMEOUT)
            self.force_close()

    def _body_expired(self, payload: StreamReader) -> None:
        self._body_timer = None
        if not payload.is_eof():
            self._guard.timed_out += 1
            self.force_close()  # the handler reading it sees the connection reset

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """A request aiohttp could not parse (or a failure outside the routes): the API's
        JSON error, and a log line naming the kind of error only, never the bytes."""
        kind = type(exc).__name__ if exc is not None else "error"
        if isinstance(exc, ConnectionError):  # the client left: no one to answer, no fault
            log.debug("client disconnected mid-request")
        elif status >= 500:
            log.error("request failed outside the routes: %s", kind)
        else:  # common on a port the internet reaches: counted, logged only when debugging
            self._guard.malformed += 1
            log.debug("malformed request refused (%d %s)", status, kind)
        code, detail = (
            ("internal", "internal error; the incident is logged")
            if status >= 500
            else ("bad_request", f"malformed HTTP request ({kind})")
        )
        response = web.Response(
            status=status,
            body=ENCODER.encode(ErrorOut(code, detail)),
            content_type="application/json",
        )
        response.force_close()
        return response


def arrival(request: web.BaseRequest, started: float) -> float:
    """When the request's first bytes reached its connection (perf_counter), for a request
    whose handler started at `started`; `started` if the connection did not see them arrive
    between requests (a request pipelined behind another, a test's own server). Read once."""
    protocol = request.protocol
    if not isinstance(protocol, GuardedHandler):
        return started
    arrived, protocol.arrived = protocol.arrived, 0.0
    return arrived if 0 < arrived <= started else started


class GuardedServer(web.Server):
    """aiohttp's server making GuardedHandlers, counting what it holds and refuses."""

    def __init__(
        self,
        *args: Any,
        limits: ServerSettings,
        admission: Admission | None = None,
        fast: FastAnswers | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.limits, self.admission = limits, admission
        # Plain native posts answered at the connection, only where admission runs: its
        # slots are how they are bounded.
        self.fast = fast if admission is not None else None
        if admission is not None:
            self.overloaded, self.overloaded_close = (
                _raw_response(
                    "503 Service Unavailable",
                    "overloaded",
                    admission.detail,
                    admission.retry_after_s,
                    close,
                )
                for close in (False, True)
            )
        self.refusal = _raw_response(
            "503 Service Unavailable",
            "overloaded",
            "too many connections; retry shortly",
            limits.retry_after_s,
        )
        self.open = 0
        self.refused = 0  # connections refused at max_connections
        self.timed_out = 0  # connections closed for a late head or body
        self.malformed = 0  # requests aiohttp could not parse, answered 400

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server is a GuardedServer with the settings' bounds."""

    def __init__(self, app: web.Application, limits: ServerSettings) -> None:
        super().__init__(
            app,
            access_log=None,
            handle_signals=False,
            keepalive_timeout=limits.keepalive_timeout_s,
            auto_decompress=False,
            lingering_time=1.0,  # an unread body is not waited for long: the answer is sent
        )
        self.limits = limits

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # the app started, as AppRunner does
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            limits=self.limits,
            admission=self.app.get(ADMISSION),
            fast=self.app.get(FAST_POST),
            **plain._kwargs,
        )

    @property
    def guarded(self) -> GuardedServer:
        server = self.server
        assert isinstance(server, GuardedServer)
        return server
