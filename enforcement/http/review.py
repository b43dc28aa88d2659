"""The review queue at the desk: `GET /v1/review` and `POST /v1/review/{transit_id}`.

Operators (and admins) list the items the follow-up queued, filtered and a page at a time,
and decide them (transits/review.py says what each decision does). Every decision is written
to the audit trail, with the caller (`actor`: the key id or the person), before it is applied:
a decision that cannot be recorded is not taken (503).
"""

from __future__ import annotations

import os
import re
from typing import Final

import msgspec
import redis.asyncio as aredis
from aiohttp import web

from ..audit.chain import AuditRecord
from ..audit.writer import HOST
from ..config.settings import CAMERA_ID, CAMERA_ID_RULE
from ..transits import review as queue
from . import errors
from .auth import OPERATOR
from .deskschemas import DecisionIn, DecisionOut, ReviewPage, review_out
from .endpoints import JSON, read_json
from .params import (
    REASON_CODE_PATTERN,
    REVIEW_CURSOR_PATTERN,
    REVIEW_LIMIT_MAX,
    TRANSIT_ID_PATTERN,
    actor_of,
    bounded_int,
    instant,
    redis_down,
    valid_reason,
)
from .schemas import ENCODER
from .service import Service

DECISION_DECODER: Final = msgspec.json.Decoder(DecisionIn)
_TRANSIT_ID: Final = re.compile(TRANSIT_ID_PATTERN)
_CURSOR: Final = re.compile(REVIEW_CURSOR_PATTERN)
_REASON_CODE: Final = re.compile(REASON_CODE_PATTERN)


def parse_cursor(text: str | None) -> tuple[float, str] | None:
    if text is None:
        return None
    m = _CURSOR.fullmatch(text)
    try:
        if m is None:
            raise ValueError(text)
        score, _, transit_id = text.partition("_")
        return float(score), transit_id
    except ValueError:
        raise errors.Invalid("not a cursor this service gave (next_cursor)", "cursor") from None


def cursor_text(score: float, transit_id: str) -> str:
    """The cursor after (score, transit id): the score exactly as stored (repr round-trips a
    float), or to the nanosecond in the unlikely case repr would use an exponent."""
    text = repr(score)
    if "e" in text:
        text = f"{score:.9f}"
    return f"{text}_{transit_id}"


def add_routes(app: web.Application, service: Service) -> None:
    rules = service.rules

    def desk() -> queue.ReviewQueue:
        if service.review is None:
            raise errors.NotReady("the review queue lives in Redis, and this service has none")
        return service.review

    async def list_review(request: web.Request) -> web.Response:
        await service.require(request, OPERATOR)
        q = request.query
        unknown = sorted(set(q) - {"gate", "camera", "reason", "since", "until", "limit", "cursor"})
        if unknown:
            raise errors.Invalid(f"unknown query parameter {unknown[0]!r}", unknown[0])
        gate = q.get("gate")
        if gate is not None and gate not in rules.gates:
            raise errors.Invalid(f"unknown gate {gate[:40]!r}", "gate")
        since = instant(q["since"], "since", rules, default=0.0) if "since" in q else None
        until = instant(q["until"], "until", rules, default=0.0) if "until" in q else None
        if since is not None and until is not None and until <= since:
            raise errors.Invalid("'until' must be after 'since'", "until")
        camera, why = q.get("camera"), q.get("reason")
        if camera is not None and CAMERA_ID.fullmatch(camera) is None:
            raise errors.Invalid(CAMERA_ID_RULE, "camera")
        if why is not None and _REASON_CODE.fullmatch(why) is None:
            raise errors.Invalid("a reason code: 1 to 64 of a-z and _", "reason")
        f = queue.Filter(gate, camera, why, since, until)
        limit = bounded_int(q.get("limit", "50"), "limit", 1, REVIEW_LIMIT_MAX)
        cursor = parse_cursor(q.get("cursor"))
        try:
            items, after = await desk().page(f, cursor, limit)
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise redis_down(exc) from None
        page = ReviewPage(
            [review_out(i) for i in items],
            None if after is None else cursor_text(*after),
        )
        return web.Response(body=ENCODER.encode(page), content_type=JSON)

    async def decide(request: web.Request) -> web.Response:
        caller = await service.require(request, OPERATOR)
        transit_id = request.match_info["transit_id"]
        if _TRANSIT_ID.fullmatch(transit_id) is None:
            raise errors.NotFound("no such review item: a transit id is 24 hex digits")
        body = await read_json(request, DECISION_DECODER)
        reason = valid_reason(body.reason)  # free text: never logged, never echoed
        if body.decision == "correct":
            if body.plate is None:
                raise errors.Invalid("a correction needs the plate as read by a person", "plate")
        elif body.plate is not None:
            raise errors.Invalid("only a correction takes a plate", "plate")
        actor, role, person = actor_of(caller)
        try:
            plan = await desk().prepare(transit_id, body.decision, reason, body.plate)
        except queue.NotQueued as exc:
            raise _not_queued(exc) from None
        except queue.Refused as exc:
            raise errors.Invalid(exc.detail, exc.field) from None
        except queue.Untrusted as exc:
            raise errors.NotReady(str(exc)) from None
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise redis_down(exc) from None
        # Recorded before it is applied: no record, no decision (503).
        if service.audit is None:
            raise errors.AuditUnavailable("the audit trail is not open yet; retry shortly")
        item = plan.item
        detail: dict[str, str] = {"decision": body.decision}
        if plan.record is not None:
            detail["plate"] = plan.record.plate
        if plan.violation is not None:
            detail["violation"] = plan.violation[0]
        await service.audit.write(
            AuditRecord(
                key_id=actor,
                role=role,
                plate=item.plate,
                at=item.ts,
                zone=item.zone,
                reason=reason,
                results=int(plan.violation is not None),
                host=HOST,
                pid=os.getpid(),
                action="review_decision",
                person=person,
                target=transit_id,
                detail=detail,
            )
        )
        try:
            outcome = await desk().apply(plan, actor, person)
        except queue.NotQueued as exc:
            raise _not_queued(exc) from None
        except queue.Changed:
            raise errors.Conflict(
                "the item changed since it was read (a corrected read arrived): read it again",
                "transit_id",
            ) from None
        except (aredis.ConnectionError, aredis.TimeoutError) as exc:
            raise redis_down(exc) from None
        out = DecisionOut(
            transit_id,
            body.decision,
            outcome.violation,
            outcome.verdict,
            outcome.decision.actor,
            outcome.decision.at,
        )
        return web.Response(body=ENCODER.encode(out), content_type=JSON)

    add, ep = app.router.add_route, service.endpoint
    add("GET", "/v1/review", ep("/v1/review", list_review))
    add("POST", "/v1/review/{transit_id}", ep("/v1/review/{transit_id}", decide))


def _not_queued(exc: queue.NotQueued) -> errors.ApiError:
    d = exc.decided
    if d is None:
        return errors.NotFound("no such review item (never queued, or expired)", "transit_id")
    return errors.Conflict(
        f"decided already: {d.decision} by {d.actor} at {d.at.isoformat(timespec='seconds')}",
        "transit_id",
    )
