"""Confirmed violations for the fines office: `GET /v1/violations`, JSON pages or CSV."""

from __future__ import annotations

import time

import redis.asyncio as aredis
from aiohttp import web

from ..transits.violations import ViolationPage, csv_header, to_csv_rows
from . import errors
from .auth import OPERATOR
from .endpoints import JSON
from .params import CURSOR_MAX, LIMIT_MAX, bounded_int, instant
from .schemas import ENCODER
from .service import Service


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
        offset = bounded_int(q.get("cursor", "0"), "cursor", 0, CURSOR_MAX)
        limit = bounded_int(q.get("limit", "500"), "limit", 1, LIMIT_MAX)
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
