"""The HTTP application: routes, the error/metrics middleware, roles, and the handlers.

`create_app(settings, rules)` builds it; the snapshot watcher is one cleanup_ctx resource.
Handlers are bytes in, bytes out: msgspec decoders and the encoder are built once.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import msgspec
from aiohttp import web

from . import errors
from .config import ApiKey, Role, Settings, hash_key
from .live import IndexHolder, LiveIndex
from .metrics import Metrics
from .openapi import docs_html, openapi_document
from .plates import normalise, normalise_text
from .police import plate_view
from .rules import Rules
from .schemas import BATCH_DECODER, ENCODER, TRANSIT_DECODER, BatchOut, ErrorOut, TransitIn
from .verdicts import Checker
from .watcher import snapshot_watcher

log = logging.getLogger(__name__)

CAMERA: Final = frozenset({"camera", "admin"})
POLICE: Final = frozenset({"police", "admin"})
JSON: Final = "application/json"

SETTINGS = web.AppKey("settings", Settings)
RULES = web.AppKey("rules", Rules)
HOLDER = web.AppKey("holder", IndexHolder)
CHECKER = web.AppKey("checker", Checker)
METRICS = web.AppKey("metrics", Metrics)
KEYS = web.AppKey("keys", dict)  # raw bearer token -> ApiKey, filled on first use

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(exc: errors.ApiError) -> web.Response:
    body = ENCODER.encode(ErrorOut(exc.code, exc.detail, exc.field))
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return web.Response(status=exc.status, body=body, content_type=JSON, headers=headers)


_HTTP_ERRORS: Final[dict[int, type[errors.ApiError]]] = {
    404: errors.NotFound, 405: errors.MethodNotAllowed, 413: errors.TooLarge,
}  # fmt: skip


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes a JSON error; request counts and latency per route."""
    t0 = time.perf_counter()
    try:
        response = await handler(request)
    except errors.ApiError as exc:
        response = _error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = _HTTP_ERRORS.get(exc.status, errors.ApiError)
        err = kind(exc.reason if exc.status != 413 else "request body too large")
        err.status = exc.status
        response = _error_response(err)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        err = errors.ApiError("internal error; the incident is logged")
        err.status, err.code = 500, "internal"
        response = _error_response(err)
    route = request.match_info.route.resource
    name = route.canonical if route is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.requests[(name, response.status)] += 1
    metrics.latency[name].observe(time.perf_counter() - t0)
    return response


def require(request: web.Request, roles: frozenset[str]) -> ApiKey:
    """The caller's key, if its role is one of `roles`; 401/403 otherwise."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise errors.Unauthorized("missing API key: send 'Authorization: Bearer KEY'")
    cache: dict[str, ApiKey | None] = request.app[KEYS]
    key = cache.get(token)
    if key is None:
        key = request.app[SETTINGS].api_keys.get(hash_key(token))
        if key is None:
            raise errors.Unauthorized("unknown API key")
        if len(cache) < 10_000:  # bounded: unknown tokens are never cached
            cache[token] = key
    if key.role not in roles:
        raise errors.Forbidden(f"role {key.role!r} may not call this endpoint")
    return key


async def _json_body(request: web.Request) -> bytes:
    if request.content_type != JSON:
        raise errors.UnsupportedMediaType(f"send Content-Type: {JSON}")
    return await request.read()


def _live(request: web.Request) -> LiveIndex:
    live = request.app[HOLDER].current
    if live is None:
        raise errors.NotReady("no verified permit index loaded yet; see /readyz")
    return live


async def post_transit(request: web.Request) -> web.Response:
    require(request, CAMERA)
    body = await _json_body(request)
    try:
        t = TRANSIT_DECODER.decode(body)
    except msgspec.MsgspecError as exc:
        raise errors.from_msgspec(exc) from None
    app = request.app
    live = _live(request)
    gate = app[RULES].gates.get(t.gate)
    if gate is None:
        raise errors.Invalid(f"unknown gate {t.gate!r}", "gate")
    verdict = app[CHECKER].check(live, normalise(t.plate, t.country), t.ts.timestamp(), gate,
                                 t.confidence, time.time(), t.event_id)  # fmt: skip
    app[METRICS].verdicts[(verdict.verdict, verdict.reason)] += 1
    return web.Response(body=ENCODER.encode(verdict), content_type=JSON)


async def post_batch(request: web.Request) -> web.Response:
    require(request, CAMERA)
    body = await _json_body(request)
    try:
        batch = BATCH_DECODER.decode(body)
    except msgspec.MsgspecError as exc:
        raise errors.from_msgspec(exc) from None
    app = request.app
    limit = app[SETTINGS].max_batch
    if len(batch.transits) > limit:
        raise errors.TooLarge(f"at most {limit} transits per batch, got {len(batch.transits)}",
                              "transits")  # fmt: skip
    live = _live(request)
    gates = app[RULES].gates
    items = []
    for i, t in enumerate(batch.transits):
        gate = gates.get(t.gate)
        if gate is None:
            raise errors.Invalid(f"unknown gate {t.gate!r}", f"transits[{i}].gate")
        items.append((normalise(t.plate, t.country), t.ts.timestamp(), gate, t.confidence,
                      t.event_id))  # fmt: skip
    results = app[CHECKER].check_batch(live, items, time.time())
    counts = app[METRICS].verdicts
    for v in results:
        counts[(v.verdict, v.reason)] += 1
    return web.Response(body=ENCODER.encode(BatchOut(results)), content_type=JSON)


async def get_plate(request: web.Request) -> web.Response:
    require(request, POLICE)
    app = request.app
    rules = app[RULES]
    raw = request.match_info["plate"]
    text = normalise_text(raw)
    if not text:
        raise errors.Invalid(f"{raw!r} is not a plate (1-11 letters and digits)", "plate")
    at_text = request.query.get("at")
    if at_text:
        try:
            at = dt.datetime.fromisoformat(at_text)
        except ValueError:
            raise errors.Invalid(f"{at_text!r} is not an RFC 3339 date-time", "at") from None
        if at.tzinfo is None:
            raise errors.Invalid("give the offset, e.g. 2026-11-22T10:00:00+01:00", "at")
    else:
        at = dt.datetime.now(dt.UTC)
    zone = request.query.get("zone")
    if zone is not None and zone not in rules.zones:
        raise errors.Invalid(f"unknown zone {zone!r} (known: {', '.join(rules.zones)})", "zone")
    unknown = set(request.query) - {"at", "zone"}
    if unknown:
        raise errors.Invalid(f"unknown query parameter {sorted(unknown)[0]!r}", sorted(unknown)[0])
    view = plate_view(app[CHECKER], _live(request), text, at, [zone] if zone else list(rules.zones))
    return web.Response(body=ENCODER.encode(view), content_type=JSON)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON)


def readiness(app: web.Application) -> tuple[bool, dict[str, object]]:
    holder, settings = app[HOLDER], app[SETTINGS]
    live = holder.current
    info: dict[str, object] = {"snapshot_swaps": holder.swaps, "snapshot_rejected": holder.rejected,
                               "last_error": holder.last_error}  # fmt: skip
    if live is None:
        return False, {"ready": False, "reason": "no verified index loaded", **info}
    age = time.time() - live.built_at
    fresh = age <= settings.index_max_age_s
    return fresh, {
        "ready": fresh,
        "reason": None if fresh else "index older than enforcement.index_max_age",
        "index_revision": live.revision,
        "index_built_at": dt.datetime.fromtimestamp(live.built_at, dt.UTC).isoformat(),
        "index_age_s": round(age, 1),
        "permits": live.index.permit_count,
        "plates": live.index.plate_count,
        "snapshot": live.source,
        "unknown_types": list(live.unknown_types),
        **info,
    }


async def readyz(request: web.Request) -> web.Response:
    ok, info = readiness(request.app)
    return web.Response(status=200 if ok else 503, body=ENCODER.encode(info), content_type=JSON)


async def metrics(request: web.Request) -> web.Response:
    return web.Response(text=request.app[METRICS].render(), content_type="text/plain",
                        charset="utf-8")  # fmt: skip


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=ENCODER.encode(openapi_document()), content_type=JSON)


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_html(), content_type="text/html", charset="utf-8")


def _register_gauges(app: web.Application) -> None:
    m, holder = app[METRICS], app[HOLDER]

    def rev() -> float:
        return holder.current.revision if holder.current else -1

    def age() -> float:
        return time.time() - holder.current.built_at if holder.current else -1

    def permits() -> float:
        return holder.current.index.permit_count if holder.current else 0

    m.gauge("varco_index_revision", "Permit-database revision of the live index.", rev)
    m.gauge("varco_index_age_seconds", "Seconds since the live index was built.", age)
    m.gauge("varco_index_permits", "Permits in the live index.", permits)
    m.gauge("varco_snapshot_swaps_total", "Snapshots activated.", lambda: holder.swaps)
    m.gauge("varco_snapshot_rejected_total", "Snapshots refused (corrupt, unreadable).",
            lambda: holder.rejected)  # fmt: skip


def create_app(settings: Settings, rules: Rules, holder: IndexHolder | None = None,
               *, watch: bool = True) -> web.Application:  # fmt: skip
    """The application. `watch=False` leaves index loading to the caller (tests, benches)."""
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app[RULES] = rules
    app[HOLDER] = holder or IndexHolder()
    app[CHECKER] = Checker(rules, review_confidence=settings.review_confidence,
                           max_clock_skew_s=settings.max_clock_skew_s,
                           index_max_age_s=settings.index_max_age_s)  # fmt: skip
    app[METRICS] = Metrics()
    app[KEYS] = {}
    _register_gauges(app)
    app.router.add_post("/v1/transits", post_transit)
    app.router.add_post("/v1/transits/batch", post_batch)
    app.router.add_get("/v1/plates/{plate}", get_plate)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/docs", docs)
    if watch:
        app.cleanup_ctx.append(snapshot_watcher(settings, rules, app[HOLDER]))
    return app


__all__ = ["Role", "TransitIn", "create_app", "readiness"]
