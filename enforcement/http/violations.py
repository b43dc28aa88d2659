"""Confirmed violations for the fines office: `GET /v1/violations`, JSON pages or CSV."""

from __future__ import annotations

import datetime as dt
import time

import redis.asyncio as aredis
from aiohttp import web

from ..core.rules import Rules
from ..transits.violations import ViolationPage, csv_header, to_csv_rows
from . import errors
from .auth import OPERATOR
from .endpoints import JSON
from .schemas import ENCODER
from .service import Service


def instant(text: str | None, field: str, rules: Rules, *, default: float) -> float:
    """An RFC 3339 instant, or a local calendar day YYYY-MM-DD (its local midnight)."""
    if text is None:
        return default
    try:
        if len(text) == 10:
            return float(rules.clock.from_local(dt.datetime.fromisoformat(text)))
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise errors.Invalid(
            f"{text!r} is neither YYYY-MM-DD nor an RFC 3339 date-time", field
        ) from None
    if value.tzinfo is None:
        raise errors.Invalid("give the offset, e.g. 2026-11-22T10:00:00+01:00", field)
    return value.timestamp()


def bounded_int(text: str, field: str, lo: int, hi: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise errors.Invalid(f"{text!r} is not an integer", field) from None
    if not lo <= value <= hi:
        raise errors.Invalid(f"{field} must be between {lo} and {hi}", field)
    return value


def add_routes(app: web.Application, service: Service) -> None:
    rules = service.rules

    async def get_violations(request: web.Request) -> web.Response:
        """Confirmed violations by first transit instant, a page at a time (JSON or CSV)."""
        await service.require(request, OPERATOR)
        if service.violations is None:
            raise errors.NotReady("violations live in Redis, and this service has none")
        q = request.query
        unknown = sorted(set(q) - {"from", "to", "cursor", "limit", "format"})
        if unknown:
            raise errors.Invalid(f"unknown query parameter {unknown[0]!r}", unknown[0])
        start = instant(q.get("from"), "from", rules, default=0.0)
        end = instant(q.get("to"), "to", rules, default=time.time() + 86400)
        if end <= start:
            raise errors.Invalid("'to' must be after 'from'", "to")
        offset = bounded_int(q.get("cursor", "0"), "cursor", 0, 10**9)
        limit = bounded_int(q.get("limit", "500"), "limit", 1, 5000)
        fmt = q.get("format", "json")
        if fmt not in ("json", "csv"):
            raise errors.Invalid("format is json or csv", "format")
        try:
            items, next_offset = await service.violations.page(start, end, offset, limit)
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise errors.NotReady(f"Redis unavailable: {type(exc).__name__}") from None
        headers = {"X-Next-Cursor": str(next_offset)} if next_offset is not None else {}
        if fmt == "csv":
            return web.Response(
                text=csv_header() + to_csv_rows(items),
                content_type="text/csv",
                charset="utf-8",
                headers=headers,
            )
        page = ViolationPage(items, None if next_offset is None else str(next_offset))
        return web.Response(body=ENCODER.encode(page), content_type=JSON, headers=headers)

    app.router.add_route(
        "GET", "/v1/violations", service.endpoint("/v1/violations", get_violations)
    )
