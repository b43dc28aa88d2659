"""The desk's request and response bodies (review queue, transit search, camera health), and
their OpenAPI paths, registered on the service like an extension's (`Service.docs`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

import msgspec

from ..audit.chain import REASON_MAX
from ..config.settings import CAMERA_ID
from ..core.verdict import Verdict
from ..transits.camerahealth import CameraStatus
from ..transits.evidence import alternatives_of
from ..transits.record import TransitRecord
from ..transits.violations import ReviewItem, Violation
from .apidoc import (
    BEARER,
    BODY,
    DAY_OR_INSTANT,
    QUERY,
    REASON,
    PathDocs,
    error,
    errors,
    json_response,
    ref,
)
from .params import (
    PLATE_PATTERN,
    REASON_CODE_PATTERN,
    REVIEW_CURSOR_PATTERN,
    REVIEW_LIMIT_MAX,
    SEARCH_LIMIT_MAX,
    TRANSIT_ID_PATTERN,
)


class ReviewOut(msgspec.Struct):
    """A review item as the desk shows it: the read, the camera's alternatives and kept vendor
    fields, and the reference to its pictures (`evidence`: a URL or `vendor:id`)."""

    transit_id: str
    plate: str  # normalised ("" when unreadable)
    raw_plate: str  # as the camera read it
    confidence: float | None
    alternatives: list[str]
    camera: str
    gate: str
    zone: str
    at: dt.datetime  # capture instant, local time
    reason: str  # why a person must look
    kept: dict[str, Any] | None
    evidence: str | None
    earlier: list[str]  # a corrected read: the reads it replaced
    withdrawn: list[str]  # a violation withdrawn for this correction: its transit ids
    index_revision: int


class ReviewPage(msgspec.Struct):
    items: list[ReviewOut]
    next_cursor: str | None


class DecisionIn(msgspec.Struct, forbid_unknown_fields=True):
    decision: Literal["confirm", "dismiss", "correct"]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=REASON_MAX)]
    # correct only: the plate as a person reads it
    plate: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] | None = None


class DecisionOut(msgspec.Struct):
    transit_id: str
    decision: str
    violation: Violation | None  # confirm: the violation the transit is now part of
    verdict: Verdict | None  # correct: the corrected read's verdict
    decided_by: str
    decided_at: dt.datetime


class TransitOut(msgspec.Struct):
    transit_id: str
    camera: str
    gate: str
    zone: str
    plate: str
    raw_plate: str
    at: dt.datetime  # capture instant
    received_at: dt.datetime
    verdict: str
    reason: str
    permits: list[str]
    confidence: float | None
    earlier: list[str]
    evidence: str | None
    kept: dict[str, Any] | None


class SearchOut(msgspec.Struct):
    transits: list[TransitOut]
    truncated: bool  # the result cap or the scan bound was reached: narrow the search
    retained_from: dt.datetime  # transits captured earlier are no longer kept
    scanned: int  # transit log entries read


class CamerasOut(msgspec.Struct):
    cameras: list[CameraStatus]


def review_out(item: ReviewItem) -> ReviewOut:
    return ReviewOut(
        item.transit_id,
        item.plate,
        item.raw,
        item.confidence,
        alternatives_of(item.kept),
        item.camera,
        item.gate,
        item.zone,
        item.ts,
        item.reason,
        item.kept,
        item.evidence,
        item.earlier,
        item.withdrawn,
        item.index_revision,
    )


_INSTANT: Final = {"type": "string", "format": "date-time", "minLength": 1}
_UNAVAILABLE: Final = "Redis unreachable, or the audit trail cannot be written (Retry-After)"


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def desk_docs(gates: list[str]) -> PathDocs:
    """The desk's operations, with the configuration's `gates` as the gate enum."""
    gate = {"type": "string", "enum": gates}
    camera = {"type": "string", "pattern": f"^{CAMERA_ID.pattern}$"}
    unavailable = error(_UNAVAILABLE, {"Retry-After": "Seconds to wait before retrying"})
    return PathDocs(
        {
            "/v1/review": {
                "get": {
                    "summary": "The review queue, oldest transit first (operator, admin)",
                    "description": (
                        "Filtered by gate, camera, reason and capture instant. A page looks "
                        "at 20,000 queued items at most: it may hold fewer than limit items "
                        "and still have a next_cursor; go on until next_cursor is null."
                    ),
                    "security": BEARER,
                    "parameters": [
                        _query("gate", gate, "Only this gate"),
                        _query("camera", camera, "Only this camera"),
                        _query(
                            "reason",
                            {"type": "string", "pattern": f"^{REASON_CODE_PATTERN}$"},
                            "Only this reason (low_confidence, near_match, unreadable, ...)",
                        ),
                        _query("since", DAY_OR_INSTANT, "Captured at or after (YYYY-MM-DD local)"),
                        _query("until", DAY_OR_INSTANT, "Captured before; after since"),
                        _query(
                            "limit",
                            {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": REVIEW_LIMIT_MAX,
                                "default": 50,
                            },
                            "Items per page",
                        ),
                        _query(
                            "cursor",
                            {"type": "string", "pattern": f"^{REVIEW_CURSOR_PATTERN}$"},
                            "next_cursor of the page before",
                        ),
                    ],
                    "responses": {
                        "200": json_response("ReviewPage", "A page of review items"),
                        **errors(QUERY, e503=error("Redis unreachable")),
                    },
                }
            },
            "/v1/review/{transit_id}": {
                "post": {
                    "summary": "Decide a review item (operator, admin)",
                    "description": (
                        "confirm: a violation (one per plate, zone and day: a second transit "
                        "joins it); refused (422) for an unreadable read, an inactive gate or "
                        "a plate a permit covers. dismiss: with its reason. correct: `plate` "
                        "judged again and recorded as a correction of the transit; a read "
                        "still in doubt stays queued. Written to the audit trail, with the "
                        "caller, before it is applied."
                    ),
                    "security": BEARER,
                    "parameters": [
                        {
                            "name": "transit_id",
                            "in": "path",
                            "required": True,
                            "description": "The transit's id (24 hex digits)",
                            "schema": {"type": "string", "pattern": f"^{TRANSIT_ID_PATTERN}$"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("DecisionIn")}},
                    },
                    "responses": {
                        "200": json_response("DecisionOut", "Decided"),
                        "404": error("No such review item"),
                        "409": error("Decided already, or changed since it was read"),
                        **errors(BODY, e503=unavailable),
                    },
                }
            },
            "/v1/transits/search": {
                "get": {
                    "summary": "Transits by plate and day, or by gate and window (operator, admin)",
                    "description": (
                        "Either plate and day, or gate, from and to (at most 24 hours apart). "
                        "A reason is required (header X-Reason, or query reason); the search "
                        "is written to the audit trail before it is answered. Only within "
                        "retention (retention.allowed): a window wholly before it is 422 "
                        "naming day or from. At most limit transits; truncated says when more "
                        "match."
                    ),
                    "security": BEARER,
                    "parameters": [
                        _query(
                            "plate",
                            {"type": "string", "pattern": f"^{PLATE_PATTERN}$"},
                            "A plate, normalised as reads are (with day)",
                        ),
                        _query(
                            "day",
                            {"type": "string", "format": "date", "minLength": 10, "maxLength": 10},
                            "A local day, YYYY-MM-DD (with plate)",
                        ),
                        _query("gate", gate, "A gate (with from and to)"),
                        _query("from", _INSTANT, "RFC 3339 (with gate)"),
                        _query("to", _INSTANT, "RFC 3339, after from, at most 24 h later"),
                        _query(
                            "limit",
                            {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": SEARCH_LIMIT_MAX,
                                "default": 500,
                            },
                            "At most this many transits",
                        ),
                        _query("reason", REASON, "The reason, if X-Reason cannot be sent"),
                        {
                            "name": "X-Reason",
                            "in": "header",
                            "required": False,
                            "description": "Why (a case number); this or reason, not both",
                            "schema": REASON,
                        },
                    ],
                    "responses": {
                        "200": json_response("SearchOut", "The transits found"),
                        **errors(QUERY, e503=unavailable),
                    },
                }
            },
            "/v1/cameras/health": {
                "get": {
                    "summary": "Per camera: last read, the hour's reads, alarms (operator, admin)",
                    "security": BEARER,
                    "responses": {
                        "200": json_response("CamerasOut", "Every camera"),
                        **errors(("401", "403", "422", "503"), e503=error("Redis unreachable")),
                    },
                }
            },
        },
        (ReviewPage, DecisionIn, DecisionOut, SearchOut, CamerasOut),
    )


def transit_out(
    rec: TransitRecord, kept: dict[str, Any] | None, evidence: str | None, clock: Any
) -> TransitOut:
    return TransitOut(
        rec.id,
        rec.camera,
        rec.gate,
        rec.zone,
        rec.plate,
        rec.raw,
        clock.to_datetime(rec.ts),
        clock.to_datetime(rec.received),
        rec.verdict,
        rec.reason,
        rec.permits,
        rec.confidence,
        rec.earlier,
        evidence,
        kept,
    )
