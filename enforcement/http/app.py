"""The HTTP application: routes, the error and metrics wrapper, roles, and the handlers.

`create_app(settings, rules)` builds it; the snapshot watcher is one cleanup_ctx resource.
Handlers are bytes in, bytes out: msgspec decoders and the encoder are built once.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Final, TypeVar

import msgspec
import redis.asyncio as aredis
from aiohttp import web

from ..audit.chain import HOST as AUDIT_HOST
from ..audit.chain import AuditLog, AuditRecord, AuditUnavailable, audit_writer, reason_of
from ..audit.chain import register_metrics as register_audit_metrics
from ..config.settings import ApiKey, Settings, hash_key
from ..core.live import IndexHolder, LiveIndex
from ..core.plates import alternatives, normalise, normalise_text
from ..core.police import plate_view
from ..core.rules import Gate, Rules
from ..core.verdicts import Checker, Verdict
from ..keys import Keys
from ..replica.follower import Follower, redis_follower
from ..replica.sources import SourceStatus
from ..replica.watcher import snapshot_watcher
from ..transits.followup import FollowUp, running
from ..transits.log import TransitLog
from ..transits.record import Transit, record_of
from ..transits.spool import SpoolFull
from ..transits.violations import ViolationPage, Violations, csv_header, to_csv_rows
from . import errors
from .cameras.body import buffered
from .cameras.registry import check_own
from .cameras.routes import add_camera_routes
from .metrics import Metrics
from .openapi import PathDocs, docs_html, openapi_document
from .schemas import BATCH_DECODER, ENCODER, TRANSIT_DECODER, BatchOut, ErrorOut, TransitIn

log = logging.getLogger(__name__)

CAMERA: Final = frozenset({"camera", "admin"})
POLICE: Final = frozenset({"police", "admin"})
ADMIN: Final = frozenset({"admin"})
JSON: Final = "application/json"

HOLDER = web.AppKey("holder", IndexHolder)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error_response(exc: errors.ApiError) -> web.Response:
    body = ENCODER.encode(ErrorOut(exc.code, exc.detail, exc.field))
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.headers is not None:  # a camera route's Digest challenge in place of Bearer
        headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    return web.Response(status=exc.status, body=body, content_type=JSON, headers=headers)


_HTTP_ERRORS: Final[dict[int, type[errors.ApiError]]] = {
    404: errors.NotFound, 405: errors.MethodNotAllowed, 413: errors.TooLarge,
}  # fmt: skip


class Api:
    """The handlers, bound to the service's state (no `app[...]` lookups per request)."""

    def __init__(self, settings: Settings, rules: Rules, holder: IndexHolder) -> None:
        self.settings, self.rules, self.holder = settings, rules, holder
        self.gates = rules.gates
        self.checker = Checker.from_settings(rules, settings)
        self.metrics = Metrics()
        self.verdict_counts = self.metrics.verdicts
        self._keys: dict[str, ApiKey] = {}  # Authorization header -> key, filled on first use
        self.follower: Follower | None = None  # set while following Redis
        self.audit: AuditLog | None = None  # the police-lookup audit trail, set while running
        self.transit_log: TransitLog | None = None  # set while running (create_app)
        self.violations: Violations | None = None  # set while running, with a Redis
        self.followup: FollowUp | None = None  # set while the worker runs here
        self.docs: list[PathDocs] = []  # an extension's paths, for /openapi.json and /docs

    def endpoint(self, name: str, handler: Handler) -> Handler:
        """Wrap a handler: every failure becomes a JSON error; counts and latency per route.

        A wrapper rather than an aiohttp middleware: the middleware machinery costs ~15 us a
        request on this stack, about as much as the whole transit check.
        """
        requests, latency = self.metrics.requests, self.metrics.latency[name]

        async def run(request: web.Request) -> web.StreamResponse:
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
                log.exception("unhandled error on %s %s", request.method, name)
                err = errors.ApiError("internal error; the incident is logged")
                err.status, err.code = 500, "internal"
                response = _error_response(err)
            requests[(name, response.status)] += 1
            latency.observe(time.perf_counter() - t0)
            return response

        return run

    def require(self, request: web.Request, roles: frozenset[str]) -> ApiKey:
        """The caller's key, if its role is one of `roles`; 401/403 otherwise."""
        header = request.headers.get("Authorization", "")
        key = self._keys.get(header)  # a camera sends the same header every time
        if key is None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise errors.Unauthorized("missing API key: send 'Authorization: Bearer KEY'")
            key = self.settings.api_keys.get(hash_key(token.strip()))
            if key is None:
                raise errors.Unauthorized("unknown API key")
            if len(self._keys) < 10_000:  # bounded: unknown keys are never cached
                self._keys[header] = key
        if key.role not in roles:
            raise errors.Forbidden(f"role {key.role!r} may not call this endpoint")
        return key

    def live(self) -> LiveIndex:
        live = self.holder.current
        if live is None:
            raise errors.NotReady("no verified permit index loaded yet; see /readyz")
        return live

    async def accept(self, transits: Sequence[Transit], *,
                     field: str | None = None) -> list[Verdict]:  # fmt: skip
        """Judge camera transits (native or from a vendor adapter) and record them.

        `field` names the list in error messages (`transits` gives `transits[3].gate`; None
        for a single transit).
        """
        live = self.live()
        gates = []
        for i, t in enumerate(transits):
            gate = self.gates.get(t.gate)
            if gate is None:
                where = "gate" if field is None else f"{field}[{i}].gate"
                raise errors.Invalid(f"unknown gate {t.gate!r}", where)
            gates.append(gate)
        # The camera's alternative reads, normalised as the read itself is when a check
        # needs them (lazily: most transits are covered and never do).
        alts = [alternatives(t.candidates, t.country, t.plate) if t.candidates else ()
                for t in transits]  # fmt: skip
        now = time.time()
        if len(transits) == 1:
            t = transits[0]
            verdicts = [self.checker.check(live, t.plate, t.ts, gates[0], t.confidence, now,
                                           t.event_id, alts[0])]  # fmt: skip
        else:
            items = [(t.plate, t.ts, g, t.confidence, t.event_id)
                     for t, g in zip(transits, gates, strict=True)]  # fmt: skip
            verdicts = self.checker.check_batch(live, items, now, alts)
        if self.transit_log is not None:
            verdicts = await self._record(transits, gates, verdicts, now)
        for v in verdicts:
            self.verdict_counts[(v.verdict, v.reason)] += 1
        return verdicts

    async def _record(self, transits: Sequence[Transit], gates: Sequence[Gate],
                      verdicts: list[Verdict], now: float) -> list[Verdict]:  # fmt: skip
        """Log the transits before answering; a retry gets its first attempt's verdict."""
        assert self.transit_log is not None
        records = [
            record_of(v, camera=t.camera, gate=gate.code, zone=gate.zone, raw=t.raw, ts=t.ts,
                      received=now, confidence=t.confidence, country=t.country,
                      vendor=t.fields)
            for t, gate, v in zip(transits, gates, verdicts, strict=True)
        ]  # fmt: skip
        try:
            priors = await self.transit_log.record(records)
        except SpoolFull as exc:
            raise errors.SpoolFull(f"transits cannot be recorded now ({exc}); retry later"
                                   ) from None  # fmt: skip
        out = []
        for v, rec, prior in zip(verdicts, records, priors, strict=True):
            if prior is None:
                v.transit_id = rec.id
                out.append(v)
            else:  # a retry: the first attempt's answer, so a camera never gets two verdicts
                grace = None if prior.grace_until is None else \
                    self.rules.clock.to_datetime(prior.grace_until)
                out.append(Verdict(prior.verdict, prior.reason, v.plate, prior.permits,
                                   prior.revision, grace, v.event_id, prior.id))  # fmt: skip
        return out

    async def post_transit(self, request: web.Request) -> web.Response:
        key = self.require(request, CAMERA)
        t = await _decode(request, TRANSIT_DECODER)
        if key.camera is not None:  # a registered camera's key: its own camera and gate only
            check_own(self.settings, key, (t,))
        (verdict,) = await self.accept((transit_of(t),))
        return web.Response(body=ENCODER.encode(verdict), content_type=JSON)

    async def post_batch(self, request: web.Request) -> web.Response:
        key = self.require(request, CAMERA)
        batch = await _decode(request, BATCH_DECODER)
        if key.camera is not None:
            check_own(self.settings, key, batch.transits, "transits")
        limit = self.settings.server.max_batch
        if len(batch.transits) > limit:
            raise errors.TooLarge(
                f"at most {limit} transits per batch, got {len(batch.transits)}", "transits"
            )
        results = await self.accept([transit_of(t) for t in batch.transits], field="transits")
        return web.Response(body=ENCODER.encode(BatchOut(results)), content_type=JSON)

    async def get_plate(self, request: web.Request) -> web.Response:
        key = self.require(request, POLICE)
        rules = self.rules
        raw = request.match_info["plate"]
        text = normalise_text(raw)
        if not text:
            raise errors.Invalid(f"{raw!r} is not a plate (1-11 letters and digits)", "plate")
        unknown = sorted(set(request.query) - {"at", "zone", "reason"})
        if unknown:
            raise errors.Invalid(f"unknown query parameter {unknown[0]!r}", unknown[0])
        reason = reason_of(request.headers, request.query)  # free text: never logged
        at_text = request.query.get("at")
        if at_text:
            try:
                at = dt.datetime.fromisoformat(at_text)
            except ValueError:
                raise errors.Invalid(f"{at_text!r} is not an RFC 3339 date-time", "at") from None
            if at.tzinfo is None:
                raise errors.Invalid("give the offset, e.g. 2026-11-22T10:00:00+01:00", "at")
            if at.timestamp() < time.time() - self.checker.max_transit_age_s:
                raise errors.Invalid(
                    f"older than the index's history ({self.settings.storage.history_days} days): "
                    "permits that ended before then are not in it", "at")  # fmt: skip
        else:
            at = dt.datetime.now(dt.UTC)
        zone = request.query.get("zone")
        if zone is not None and zone not in rules.zones:
            raise errors.Invalid(f"unknown zone {zone!r} (known: {', '.join(rules.zones)})",
                                 "zone")  # fmt: skip
        zones = [zone] if zone else list(rules.zones)
        view = plate_view(self.checker, self.live(), text, at, zones)
        # Recorded before answering; no record, no answer (503).
        if self.audit is None:
            raise AuditUnavailable("the audit trail is not open yet; retry shortly")
        await self.audit.write(AuditRecord(key_id=key.id, role=key.role, plate=text, at=at,
                                           zone=zone, reason=reason, results=len(view.permits),
                                           host=AUDIT_HOST, pid=os.getpid()))  # fmt: skip
        return web.Response(body=ENCODER.encode(view), content_type=JSON)

    async def get_violations(self, request: web.Request) -> web.Response:
        """Confirmed violations by first transit instant, a page at a time (JSON or CSV)."""
        self.require(request, ADMIN)
        if self.violations is None:
            raise errors.NotReady("violations live in Redis, and this service has none")
        q = request.query
        unknown = sorted(set(q) - {"from", "to", "cursor", "limit", "format"})
        if unknown:
            raise errors.Invalid(f"unknown query parameter {unknown[0]!r}", unknown[0])
        start = _instant(q.get("from"), "from", self.rules, default=0.0)
        end = _instant(q.get("to"), "to", self.rules, default=time.time() + 86400)
        if end <= start:
            raise errors.Invalid("'to' must be after 'from'", "to")
        offset = _int(q.get("cursor", "0"), "cursor", 0, 10**9)
        limit = _int(q.get("limit", "500"), "limit", 1, 5000)
        fmt = q.get("format", "json")
        if fmt not in ("json", "csv"):
            raise errors.Invalid("format is json or csv", "format")
        try:
            items, next_offset = await self.violations.page(start, end, offset, limit)
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise errors.NotReady(f"Redis unavailable: {type(exc).__name__}") from None
        headers = {"X-Next-Cursor": str(next_offset)} if next_offset is not None else {}
        if fmt == "csv":
            return web.Response(text=csv_header() + to_csv_rows(items), content_type="text/csv",
                                charset="utf-8", headers=headers)  # fmt: skip
        page = ViolationPage(items, None if next_offset is None else str(next_offset))
        return web.Response(body=ENCODER.encode(page), content_type=JSON, headers=headers)

    async def method_not_allowed(self, request: web.Request) -> web.Response:
        raise errors.MethodNotAllowed(f"{request.method} is not allowed on {request.path}")

    async def not_found(self, request: web.Request) -> web.Response:
        raise errors.NotFound(f"no such endpoint: {request.path}")


API = web.AppKey("api", Api)


def transit_of(t: TransitIn) -> Transit:
    """A native transit as `Api.accept` takes it."""
    return Transit(t.camera, t.gate, t.event_id, t.plate, normalise(t.plate, t.country),
                   t.ts.timestamp(), t.confidence, t.country)  # fmt: skip


def _instant(text: str | None, field: str, rules: Rules, *, default: float) -> float:
    """An RFC 3339 instant, or a local calendar day YYYY-MM-DD (its local midnight)."""
    if text is None:
        return default
    try:
        if len(text) == 10:
            return float(rules.clock.from_local(dt.datetime.fromisoformat(text)))
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise errors.Invalid(f"{text!r} is neither YYYY-MM-DD nor an RFC 3339 date-time",
                             field) from None  # fmt: skip
    if value.tzinfo is None:
        raise errors.Invalid("give the offset, e.g. 2026-11-22T10:00:00+01:00", field)
    return value.timestamp()


def _int(text: str, field: str, lo: int, hi: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise errors.Invalid(f"{text!r} is not an integer", field) from None
    if not lo <= value <= hi:
        raise errors.Invalid(f"{field} must be between {lo} and {hi}", field)
    return value


T = TypeVar("T")


async def _decode(request: web.Request, decoder: msgspec.json.Decoder[T]) -> T:
    """The JSON body as a struct; 415, 413, 400 or 422 (naming the field) otherwise."""
    # Compare the raw header first: parsing it costs more than the verdict's lookup.
    if request.headers.get("Content-Type") != JSON and request.content_type != JSON:
        raise errors.UnsupportedMediaType(f"send Content-Type: {JSON}")
    # A body already received whole is taken without an await, as the camera adapters do;
    # `request.read()` costs a few µs more per post (two awaits and a copy).
    body = buffered(request, request.client_max_size)
    try:
        return decoder.decode(body if body is not None else await request.read())
    except msgspec.MsgspecError as exc:
        raise errors.from_msgspec(exc) from None


async def healthz(request: web.Request) -> web.Response:
    return web.Response(body=b'{"status":"ok"}', content_type=JSON)


def readiness(api: Api) -> tuple[bool, dict[str, object]]:
    """Ready = a verified index, not stale, reflecting the permit database as of no longer
    ago than `enforcement.index_max_age`; and the details."""
    holder, follower = api.holder, api.follower
    live = holder.current
    info: dict[str, object] = {"snapshot_swaps": holder.swaps, "snapshot_rejected": holder.rejected,
                               "last_error": holder.last_error,
                               "worker_pid": os.getpid()}  # which of `serve --workers` answered
    if follower is not None:
        info["redis"] = {"connected": follower.connected, "last_error": follower.last_error,
                         "changes_applied": follower.changes_applied,
                         "resyncs": follower.resyncs}  # fmt: skip
        if follower.sources:
            info["sources"], info["warnings"] = _sources(follower.sources.values())
    if api.audit is not None:  # not part of readiness: transits do not need it, lookups do
        info["audit"] = api.audit.status()
    log_ = api.transit_log
    if api.followup is not None:
        info["followup"] = api.followup.status()
    if log_ is not None:
        info["transit_log"] = log_.status()
        if log_.full:  # transits would be refused: send cameras elsewhere
            return False, {"ready": False, "reason": "transit spool full", **info}
    if live is None:
        return False, {"ready": False, "reason": "no verified index loaded", **info}
    lag = time.time() - live.fresh_at
    stale = live.overlay.stale
    fresh = lag <= api.settings.enforcement.index_max_age_s
    reason = (f"index stale: {stale}" if stale is not None
              else None if fresh else "index older than enforcement.index_max_age")  # fmt: skip
    return reason is None, {
        "ready": reason is None,
        "reason": reason,
        "index_revision": live.revision,
        "snapshot_revision": live.snapshot_revision,
        "overlay_changes": len(live.overlay),
        "index_built_at": dt.datetime.fromtimestamp(live.built_at, dt.UTC).isoformat(),
        "index_age_s": round(time.time() - live.built_at, 1),
        "freshness_lag_s": round(lag, 1),
        "permits": live.index.permit_count,
        "plates": live.index.plate_count,
        "snapshot": live.source,
        "lookup_kernel": live.index.kernel,
        "unknown_types": list(live.unknown_types),
        **info,
    }


def _sources(statuses: Iterable[SourceStatus]) -> tuple[dict[str, object], list[str]]:
    """The feeds' details for /readyz, and a warning per feed past its max_age (its last good
    permits still count, so the replica stays ready)."""
    now = time.time()
    details: dict[str, object] = {}
    warnings: list[str] = []
    for s in statuses:
        age = s.age_s(now)
        details[s.name] = {"age_s": None if age is None else round(age), "max_age_s": s.max_age_s,
                           "last_error": s.last_error, "held": s.held, "rows": s.rows,
                           "permits": s.permits, "rejected": s.rejected}  # fmt: skip
        if s.too_old(now):
            since = "never synced" if age is None else f"no good sync for {age / 3600:.1f} h"
            error = f"; last error: {s.last_error}" if s.last_error else ""
            warnings.append(f"feed {s.name}: {since} (max_age {s.max_age_s / 3600:g} h){error}")
    return details, warnings


def _register_gauges(api: Api) -> None:
    m, holder = api.metrics, api.holder

    def rev() -> float:
        return holder.current.revision if holder.current else -1

    def age() -> float:
        return time.time() - holder.current.built_at if holder.current else -1

    def permits() -> float:
        return holder.current.index.permit_count if holder.current else 0

    m.gauge("varco_index_revision", "Permit-database revision of the live index.", rev)
    m.gauge("varco_index_age_seconds", "Seconds since the live index was built.", age)
    m.gauge(
        "varco_index_freshness_lag_seconds",
        "Seconds since the permit database was last known reflected in the index.",
        lambda: time.time() - holder.current.fresh_at if holder.current else -1,
    )
    m.gauge(
        "varco_index_stale",
        "1 when permit changes were missed (resynchronising).",
        lambda: float(holder.current is not None and holder.current.overlay.stale is not None),
    )
    m.gauge(
        "varco_overlay_changes",
        "Permit changes applied on top of the snapshot.",
        lambda: len(holder.current.overlay) if holder.current else 0,
    )
    m.gauge("varco_index_permits", "Permits in the live index.", permits)
    m.gauge("varco_snapshot_swaps_total", "Snapshots activated.", lambda: holder.swaps)
    m.gauge("varco_snapshot_rejected_total", "Snapshots refused (corrupt, unreadable).",
            lambda: holder.rejected)  # fmt: skip

    def transits(attr: str) -> Callable[[], float]:
        return lambda: getattr(api.transit_log, attr) if api.transit_log is not None else 0

    m.gauge("varco_transits_logged_redis_total", "Transits written to the Redis stream.",
            transits("written_redis"))  # fmt: skip
    m.gauge("varco_transits_spooled_total", "Transits written to the local spool.",
            transits("written_spool"))  # fmt: skip
    m.gauge("varco_transits_replayed_total", "Spooled transits replayed into Redis.",
            transits("replayed"))  # fmt: skip
    m.gauge("varco_transits_duplicate_total", "Camera retries answered with the first verdict.",
            transits("duplicates"))  # fmt: skip
    m.gauge("varco_transits_refused_total", "Transits refused (spool full or failing).",
            transits("refused"))  # fmt: skip
    m.gauge("varco_transit_log_groups_total", "Group commits (writes of queued transits).",
            transits("groups"))  # fmt: skip
    m.gauge("varco_transit_log_to_spool", "1 while transits go to the local spool.",
            lambda: float(api.transit_log is not None and not api.transit_log.redis_ok))
    m.gauge("varco_transit_spool_bytes", "Bytes in the local transit spool.",
            lambda: api.transit_log.spool.bytes_used
            if api.transit_log is not None and api.transit_log.spool else 0)  # fmt: skip

    m.gauge_by("varco_followup_transits_total",
               "Transits the follow-up worker in this process handled, by outcome.", "outcome",
               lambda: dict(api.followup.counts) if api.followup is not None else {})  # fmt: skip

    def feeds() -> list[SourceStatus]:
        return list(api.follower.sources.values()) if api.follower is not None else []

    def feed_age(s: SourceStatus) -> float:
        a = s.age_s(time.time())
        return -1 if a is None else a

    m.gauge_by("varco_feed_age_seconds", "Seconds since the feed's last good sync (-1: never).",
               "feed", lambda: {s.name: feed_age(s) for s in feeds()})  # fmt: skip
    m.gauge_by("varco_feed_max_age_seconds", "The feed's age bound (older: a warning).", "feed",
               lambda: {s.name: s.max_age_s for s in feeds()})  # fmt: skip
    m.gauge_by("varco_feed_failing", "1 while the feed's last attempt failed or is held.",
               "feed", lambda: {s.name: s.last_error is not None for s in feeds()})  # fmt: skip
    m.gauge_by("varco_feed_rejected_rows", "Rows rejected by the feed's last good sync.", "feed",
               lambda: {s.name: s.rejected for s in feeds()})  # fmt: skip


def _transit_log(
    api: Api, settings: Settings, redis_url: str | None
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def run(app: web.Application) -> AsyncIterator[None]:
        log_ = TransitLog(redis_url=redis_url, prefix=settings.redis.prefix,
                          spool_root=settings.storage.spool_dir, spool_max_bytes=settings.transit_log.spool_max_bytes,
                          write_timeout_s=settings.transit_log.write_timeout_s,
                          dedup_window_s=settings.transit_log.dedup_window_s,
                          retention_s=settings.retention.allowed_s)  # fmt: skip
        await log_.start()
        api.transit_log = log_
        try:
            yield
        finally:
            api.transit_log = None
            await log_.stop()

    return run


def _violations(api: Api, settings: Settings, redis_url: str,
                followup: bool) -> Callable[[web.Application], AsyncIterator[None]]:  # fmt: skip
    """The violations store for GET /v1/violations; and the follow-up worker if asked."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        r = aredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=2)
        api.violations = Violations(r, settings.redis.prefix, api.rules.clock)
        worker = None
        if followup:
            worker = FollowUp(r, settings.redis.prefix, api.rules, api.checker, api.holder,
                              retention_allowed_s=settings.retention.allowed_s,
                              retention_violations_s=settings.retention.violations_s)  # fmt: skip
            api.followup = worker
        try:
            if worker is None:
                yield
            else:
                async with running(worker):
                    yield
        finally:
            api.violations = api.followup = None
            await r.aclose()

    return run


Extension = Callable[[web.Application, "Api", str | None], None]


def create_app(settings: Settings, rules: Rules, holder: IndexHolder | None = None,
               *, watch: bool = True, redis_url: str | None = None,
               extend: Extension | None = None, record: bool = True,
               transit_redis_url: str | None = None,
               followup: bool = False) -> web.Application:  # fmt: skip
    """The application. Follows Redis at `redis_url` (snapshots and permit changes), else the
    local snapshot files; `watch=False` leaves index loading to the caller (tests, benches).
    `extend(app, api, redis_url)` adds routes (the admin API, which needs the database) and
    documents them by appending to `api.docs`. `record=False` judges transits without logging
    them: only for benchmarks that measure what the log costs. Transits go to the Redis at
    `transit_redis_url` (default: `redis_url`; none: the local spool only); `followup` runs
    the follow-up worker (followup.py) in this process."""
    api = Api(settings, rules, holder or IndexHolder())
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[API] = api
    app[HOLDER] = api.holder
    _register_gauges(api)
    register_audit_metrics(api.metrics, lambda: api.audit)

    def adopt_audit(audit: AuditLog | None) -> None:
        api.audit = audit

    # Every police lookup is recorded first: in Redis when following one, else in a file.
    app.cleanup_ctx.append(audit_writer(settings.storage.data_dir, redis_url,
                                        Keys(settings.redis.prefix).audit, adopt_audit))

    async def readyz(request: web.Request) -> web.Response:
        ok, info = readiness(api)
        return web.Response(status=200 if ok else 503, body=ENCODER.encode(info),
                            content_type=JSON)  # fmt: skip

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text=api.metrics.render(), content_type="text/plain",
                            charset="utf-8")  # fmt: skip

    @functools.cache  # on first request: by then `extend` has registered its paths
    def documents() -> tuple[bytes, str]:
        doc = openapi_document(api.docs)
        return ENCODER.encode(doc), docs_html(doc)

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=documents()[0], content_type=JSON)

    async def docs(request: web.Request) -> web.Response:
        return web.Response(text=documents()[1], content_type="text/html", charset="utf-8")

    add, ep = app.router.add_route, api.endpoint
    add("POST", "/v1/transits", ep("/v1/transits", api.post_transit))
    add("POST", "/v1/transits/batch", ep("/v1/transits/batch", api.post_batch))
    add("GET", "/v1/plates/{plate}", ep("/v1/plates/{plate}", api.get_plate))
    add("GET", "/v1/violations", ep("/v1/violations", api.get_violations))
    add("GET", "/healthz", ep("/healthz", healthz))
    add("GET", "/readyz", ep("/readyz", readyz))
    add("GET", "/metrics", ep("/metrics", metrics))
    add("GET", "/openapi.json", ep("/openapi.json", openapi))
    add("GET", "/docs", ep("/docs", docs))
    add_camera_routes(app, api)  # vendor formats (enforcement/cameras/)
    if extend is not None:
        extend(app, api, redis_url)
    # JSON errors for every other method and path (no middleware: see `Api.endpoint`).
    for resource in list(app.router.resources()):
        add("*", resource.canonical, ep("method_not_allowed", api.method_not_allowed))
    add("*", "/{path:.*}", ep("unmatched", api.not_found))
    transit_redis = transit_redis_url or redis_url
    if record:
        app.cleanup_ctx.append(_transit_log(api, settings, transit_redis))
    if transit_redis is not None:
        app.cleanup_ctx.append(_violations(api, settings, transit_redis, followup))
    if watch and redis_url is not None:

        def adopt(follower: Follower) -> None:
            api.follower = follower

        app.cleanup_ctx.append(redis_follower(rules, api.holder, settings.storage.snapshot_dir, redis_url,
                                              Keys(settings.redis.prefix), adopt))  # fmt: skip
    elif watch:
        app.cleanup_ctx.append(snapshot_watcher(settings, rules, api.holder))
    return app


__all__ = ["API", "HOLDER", "Api", "Extension", "create_app", "readiness"]
