"""The desk's other two views: `GET /v1/transits/search` and `GET /v1/cameras/health`, and the
cameras' figures in /metrics (by camera id; never a plate).

A search answers a citizen contesting a fine, or checks a camera: transits by plate and local
day, or by gate and a window of at most 24 hours, only within retention (`retention.allowed`;
a window wholly before it is 422 naming the field), at most `limit` of them. Like a police
lookup it needs a reason and is written to the audit trail, with the caller, before it is
answered (transits/search.py says how the stream is read, and what bounds it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from typing import Final

import msgspec
import redis.asyncio as aredis
from aiohttp import web

from ..audit.chain import AuditRecord
from ..audit.writer import HOST
from ..core.plates import normalise_text
from ..keys import Keys
from ..transits.evidence import evidence_of, kept_fields
from ..transits.search import Found
from . import errors
from .auth import OPERATOR
from .deskschemas import CamerasOut, SearchOut, desk_docs, transit_out
from .endpoints import JSON
from .params import (
    PLATE_PATTERN,
    SEARCH_LIMIT_MAX,
    actor_of,
    bounded_int,
    reason_of,
    redis_down,
    rfc3339,
)
from .schemas import ENCODER
from .service import Service

MAX_WINDOW_S: Final = 24 * 3600
_PLATE: Final = re.compile(PLATE_PATTERN)
_PARAMS: Final = frozenset({"plate", "day", "gate", "from", "to", "limit", "reason"})


def add_routes(app: web.Application, service: Service) -> None:
    settings, rules = service.settings, service.rules
    keys = Keys(settings.redis.prefix)
    service.docs.append(desk_docs(list(rules.gates)))
    _register_metrics(service)

    async def search(request: web.Request) -> web.Response:
        caller = await service.require(request, OPERATOR)
        q = request.query
        unknown = sorted(set(q) - _PARAMS)
        if unknown:
            raise errors.Invalid(f"unknown query parameter {unknown[0]!r}", unknown[0])
        by_plate = "plate" in q or "day" in q
        given = {"plate", "day"} if by_plate else {"gate", "from", "to"}
        for name in sorted({"plate", "day", "gate", "from", "to"} - given):
            if name in q:
                raise errors.Invalid(
                    "search by plate and day, or by gate, from and to: not both", name
                )
        for name in sorted(given):
            if not q.get(name):
                raise errors.Invalid(f"{name} is required (plate and day, or gate, from, to)", name)
        limit = bounded_int(q.get("limit", "500"), "limit", 1, SEARCH_LIMIT_MAX)
        if by_plate:
            plate = normalise_text(q["plate"]) if _PLATE.fullmatch(q["plate"]) else ""
            if not plate:
                raise errors.Invalid("not a plate: 1 to 11 letters and digits", "plate")
            try:
                day = msgspec.convert(q["day"], dt.date)  # YYYY-MM-DD only
            except msgspec.ValidationError:
                raise errors.Invalid(f"{q['day'][:40]!r} is not YYYY-MM-DD", "day") from None
            start = float(rules.clock.from_local(dt.datetime.combine(day, dt.time())))
            end = float(
                rules.clock.from_local(dt.datetime.combine(day, dt.time()) + dt.timedelta(days=1))
            )
            window_field = "day"
            detail = {"day": day.isoformat()}
        else:
            gate = q["gate"]
            if gate not in rules.gates:
                raise errors.Invalid(f"unknown gate {gate[:40]!r}", "gate")
            start, end = rfc3339(q["from"], "from").timestamp(), rfc3339(q["to"], "to").timestamp()
            if end <= start:
                raise errors.Invalid("'to' must be after 'from'", "to")
            if end - start > MAX_WINDOW_S:
                raise errors.Invalid("at most 24 hours between 'from' and 'to'", "to")
            window_field = "from"
            detail = {"from": q["from"], "to": q["to"]}
        reason = reason_of(request.headers, q, "a transit search")  # free text: never logged
        retained_from = time.time() - settings.retention.allowed_s
        if end <= retained_from:
            hours = settings.retention.allowed_s / 3600
            raise errors.Invalid(
                f"transits are kept {hours:g} h (retention.allowed): none captured then remains",
                window_field,
            )
        if service.search is None:
            raise errors.NotReady("transits are searched in Redis, and this service has none")
        try:
            if by_plate:
                found: Found = await service.search.by_plate(plate, start, end, limit)
            else:
                found = await service.search.by_gate(gate, start, end, limit)
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise redis_down(exc) from None
        # Recorded before it is answered, like a police lookup: no record, no answer (503).
        if service.audit is None:
            raise errors.AuditUnavailable("the audit trail is not open yet; retry shortly")
        actor, role, person = actor_of(caller)
        await service.audit.write(
            AuditRecord(
                key_id=actor,
                role=role,
                plate=plate if by_plate else "",
                at=rules.clock.to_datetime(start),
                zone=None,
                reason=reason,
                results=len(found.records),
                host=HOST,
                pid=os.getpid(),
                action="transit_search",
                person=person,
                target=None if by_plate else gate,
                detail=detail,
            )
        )
        transits = []
        for rec in found.records:
            kept = kept_fields(rec.vendor)
            transits.append(transit_out(rec, kept, evidence_of(kept), rules.clock))
        out = SearchOut(
            transits, found.truncated, rules.clock.to_datetime(retained_from), found.scanned
        )
        return web.Response(body=ENCODER.encode(out), content_type=JSON)

    async def health(request: web.Request) -> web.Response:
        await service.require(request, OPERATOR)
        if request.query:
            name = sorted(request.query)[0]
            raise errors.Invalid(f"unknown query parameter {name!r}", name)
        try:
            cameras = await service.health.view(service.desk_redis, keys)
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise redis_down(exc) from None
        return web.Response(body=ENCODER.encode(CamerasOut(cameras)), content_type=JSON)

    add, ep = app.router.add_route, service.endpoint
    add("GET", "/v1/transits/search", ep("/v1/transits/search", search))
    add("GET", "/v1/cameras/health", ep("/v1/cameras/health", health))


def _register_metrics(service: Service) -> None:
    """Per camera id, this process's counts (Prometheus sums the replicas); silence from the
    replicas' last reads as of the last flush."""
    m, h = service.metrics, service.health
    m.counter_by(
        "varco_camera_reads_total",
        "Reads posted, by camera.",
        "camera",
        lambda: {c: t[0] for c, t in h.totals.items()},
    )
    m.counter_by(
        "varco_camera_unreadable_total",
        "Unreadable reads posted, by camera.",
        "camera",
        lambda: {c: t[1] for c, t in h.totals.items()},
    )
    m.gauge_by(
        "varco_camera_clock_offset_seconds",
        "Arrival minus capture instant of the camera's last read (negative: its clock is ahead).",
        "camera",
        lambda: {c: round(t[2], 3) for c, t in h.totals.items()},
    )
    m.gauge_by(
        "varco_camera_last_read_timestamp_seconds",
        "When this process last received a read from the camera (epoch seconds).",
        "camera",
        lambda: h.last_reads,
    )
    m.gauge_by(
        "varco_camera_silent",
        "1 while the camera has sent nothing for 15 minutes during its gate's active hours.",
        "camera",
        h.silent_now,
        merge="min",  # silent only if no worker heard it (without Redis each knows its own)
    )
