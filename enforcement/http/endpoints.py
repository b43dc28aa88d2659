"""How every handler runs: failures become JSON errors, each route is counted and timed.

A wrapper per route rather than an aiohttp middleware: the middleware machinery costs ~15 us
a request on this stack, about as much as the whole transit check. The service's own
exceptions (no index yet, an unknown gate, a full spool, an audit trail that cannot be
written) become their HTTP errors here, so the parts that raise them know nothing of HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import msgspec
from aiohttp import web

from ..audit.writer import AuditWriteFailed
from ..core.live import NoIndex
from ..core.rules import UnknownGate
from ..transits.spool import SpoolFull
from . import errors
from .admission import Admission
from .cameras.body import buffered, read_body
from .connections import arrival
from .metrics import Metrics
from .schemas import ENCODER, ErrorOut

log = logging.getLogger(__name__)

JSON: Final = "application/json"
# The status counted for a request whose client closed the connection first (nginx's 499):
# no answer is sent, and it is no server error.
CLIENT_GONE: Final = 499
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")

_HTTP_ERRORS: Final[dict[int, type[errors.ApiError]]] = {
    404: errors.NotFound,
    405: errors.MethodNotAllowed,
    413: errors.TooLarge,
}


def error_response(exc: errors.ApiError) -> web.Response:
    body = ENCODER.encode(ErrorOut(exc.code, exc.detail, exc.field))
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.headers is not None:  # a camera route's Digest challenge in place of Bearer
        headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    response = web.Response(status=exc.status, body=body, content_type=JSON, headers=headers)
    if exc.status == 413:  # the rest of the body is not worth reading: the connection goes
        response.force_close()
    return response


def _api_error(exc: Exception) -> errors.ApiError | None:
    """The HTTP error for one of the service's own exceptions (None: not one of them)."""
    if isinstance(exc, NoIndex):
        return errors.NotReady(str(exc))
    if isinstance(exc, UnknownGate):
        return errors.Invalid(str(exc), exc.field)
    if isinstance(exc, SpoolFull):
        return errors.SpoolFull(f"transits cannot be recorded now ({exc}); retry later")
    if isinstance(exc, AuditWriteFailed):
        return errors.AuditUnavailable(
            "the lookup cannot be recorded in the audit trail right "
            "now, so it is refused; retry shortly"
        )
    return None


def endpoint(
    metrics: Metrics, name: str, handler: Handler, admission: Admission | None = None
) -> Handler:
    """`handler` with its failures as JSON errors, counted and timed as route `name`; it runs
    only once `admission` (if any) gives it a slot, else its answer is 503 `overloaded`."""
    requests, latency = metrics.requests, metrics.latency[name]

    async def run(request: web.Request) -> web.StreamResponse:
        t0 = time.perf_counter()
        if admission is not None and not admission.enter():
            try:
                await admission.wait()
            except errors.ApiError as exc:
                requests[(name, exc.status)] += 1
                return error_response(exc)
        try:
            response = await handler(request)
        except errors.ApiError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            kind = _HTTP_ERRORS.get(exc.status, errors.ApiError)
            err = kind(exc.reason if exc.status != 413 else "request body too large")
            err.status = exc.status
            response = error_response(err)
        except ConnectionResetError:  # the client went away (or ran out of time) mid-request
            requests[(name, CLIENT_GONE)] += 1
            raise
        except Exception as exc:
            known = _api_error(exc)
            if known is None:
                log.exception("unhandled error on %s %s", request.method, name)
                known = errors.ApiError("internal error; the incident is logged")
                known.status, known.code = 500, "internal"
            response = error_response(known)
        finally:
            ended = time.perf_counter()  # one clock read for the limit and the histogram
            if admission is not None:
                # From the request's first bytes, when the connection saw them (before aiohttp
                # parsed it): the adaptive limit keeps the latency the client sees in check.
                admission.done(arrival(request, t0), ended)
        requests[(name, response.status)] += 1
        latency.observe(ended - t0)
        return response

    return run


def decode_buffered(request: web.Request, decoder: msgspec.json.Decoder[T]) -> T | None:
    """`read_json`'s answer without an await when the body is already received whole and
    says it is JSON (the usual camera post: a coroutine costs more than the verdict's
    lookup); None: await `read_json`."""
    if request.headers.get("Content-Type") != JSON:
        return None
    body = buffered(request, request.client_max_size)
    return None if body is None else _decode(decoder, body)


async def read_json(request: web.Request, decoder: msgspec.json.Decoder[T]) -> T:
    """The JSON body as a struct; 415, 413, 400 or 422 (naming the field) otherwise."""
    # Compare the raw header first: parsing it costs more than the verdict's lookup.
    if request.headers.get("Content-Type") != JSON and request.content_type != JSON:
        raise errors.UnsupportedMediaType(f"send Content-Type: {JSON}")
    # A body already received whole is taken without an await, as the camera adapters do;
    # reading it costs a few µs more per post (awaits and a copy).
    cap = request.client_max_size
    body = buffered(request, cap)
    return _decode(decoder, body if body is not None else await read_body(request, cap))


def _decode(decoder: msgspec.json.Decoder[T], body: bytes) -> T:
    try:
        return decoder.decode(body)
    except msgspec.MsgspecError as exc:
        raise errors.from_msgspec(exc) from None
    except RecursionError:  # msgspec's nesting limit: no request of ours nests so deep
        raise errors.MalformedBody("JSON nested too deeply") from None
