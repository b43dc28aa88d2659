"""The police lookup: `GET /v1/plates/{plate}`, recorded in the audit trail before it is answered.

Every lookup gives a reason (header `X-Reason`, or query parameter `reason`: the header keeps
it out of proxies' access logs); the record (who, when, what, why, how many permits) is written
before the answer, and a lookup that cannot be recorded is refused (503).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from typing import Final

from aiohttp import web

from ..audit.chain import AuditRecord
from ..audit.writer import HOST
from ..core.plates import normalise_text
from ..core.police import plate_view
from . import errors
from .auth import POLICE
from .endpoints import JSON
from .params import PLATE_PATTERN, reason_of, rfc3339
from .schemas import ENCODER
from .service import Service

_PLATE: Final = re.compile(PLATE_PATTERN)


def add_routes(app: web.Application, service: Service) -> None:
    settings, rules, checker = service.settings, service.rules, service.checker

    async def get_plate(request: web.Request) -> web.Response:
        caller = await service.require(request, POLICE)
        raw = request.match_info["plate"]
        text = normalise_text(raw) if _PLATE.fullmatch(raw) else ""
        if not text:
            raise errors.Invalid(f"{raw!r} is not a plate (1-11 letters and digits)", "plate")
        unknown = sorted(set(request.query) - {"at", "zone", "reason"})
        if unknown:
            raise errors.Invalid(f"unknown query parameter {unknown[0]!r}", unknown[0])
        reason = reason_of(request.headers, request.query)  # free text: never logged
        at_text = request.query.get("at")
        if at_text is not None:  # given empty, it is no instant (absent: now)
            at = rfc3339(at_text, "at")
            if at.tzinfo is None:
                raise errors.Invalid("give the offset, e.g. 2026-11-22T10:00:00+01:00", "at")
            if at.timestamp() < time.time() - checker.max_transit_age_s:
                raise errors.Invalid(
                    f"older than the index's history ({settings.storage.history_days} days): "
                    "permits that ended before then are not in it",
                    "at",
                )
        else:
            at = dt.datetime.now(dt.UTC)
        zone = request.query.get("zone")
        if zone is not None and zone not in rules.zones:
            raise errors.Invalid(f"unknown zone {zone!r} (known: {', '.join(rules.zones)})", "zone")
        zones = [zone] if zone else list(rules.zones)
        view = plate_view(checker, service.live(), text, at, zones)
        # Recorded before answering; no record, no answer (503).
        if service.audit is None:
            raise errors.AuditUnavailable("the audit trail is not open yet; retry shortly")
        await service.audit.write(
            AuditRecord(
                key_id=caller.id,
                role=caller.role,
                person=caller.person,
                plate=text,
                at=at,
                zone=zone,
                reason=reason,
                results=len(view.permits),
                host=HOST,
                pid=os.getpid(),
            )
        )
        return web.Response(body=ENCODER.encode(view), content_type=JSON)

    app.router.add_route(
        "GET", "/v1/plates/{plate}", service.endpoint("/v1/plates/{plate}", get_plate)
    )
