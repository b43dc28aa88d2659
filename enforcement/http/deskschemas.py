"""The desk's request and response bodies (review queue, transit search, camera health), and
their OpenAPI paths, registered on the service like an extension's (`Service.docs`)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

import msgspec

from ..core.verdict import Verdict
from ..transits.camerahealth import CameraStatus
from ..transits.evidence import alternatives_of
from ..transits.record import TransitRecord
from ..transits.violations import ReviewItem, Violation
from .apidoc import ERRORS, PathDocs, json_response, ref


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
    reason: str
    plate: str | None = None  # correct only: the plate as a person reads it


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


def _param(name: str, where: str, description: str, required: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": {"type": "string"},
    }


_DESK: Final[list[dict[str, list[str]]]] = [{"bearer": []}]
_REASON_HEADER: Final = _param(
    "X-Reason", "header", "Why (a case number): one line, at most 500 characters"
)


def desk_docs() -> PathDocs:
    q = "query"
    errors = {**ERRORS, "503": json_response("ErrorOut", "Redis or the audit trail unavailable")}
    return PathDocs(
        {
            "/v1/review": {
                "get": {
                    "summary": "The review queue, oldest transit first (operator, admin)",
                    "security": _DESK,
                    "parameters": [
                        _param("gate", q, "Only this gate"),
                        _param("camera", q, "Only this camera"),
                        _param("reason", q, "Only this reason (low_confidence, near_match, ...)"),
                        _param("since", q, "Captured at or after: RFC 3339, or YYYY-MM-DD local"),
                        _param("until", q, "Captured before: RFC 3339, or YYYY-MM-DD local"),
                        _param("limit", q, "Items per page, 1-500 (default 50)"),
                        _param("cursor", q, "next_cursor of the page before"),
                    ],
                    "responses": {"200": json_response("ReviewPage", "A page"), **errors},
                }
            },
            "/v1/review/{transit_id}": {
                "post": {
                    "summary": "Decide a review item (operator, admin)",
                    "description": (
                        "confirm: a violation (one per plate, zone and day: a second transit "
                        "joins it); refused (422) for an unreadable read, an inactive gate or "
                        "a covered plate. dismiss: with its reason. correct: `plate` judged "
                        "again and recorded as a correction of the transit; a read still in "
                        "doubt stays queued. Audited with the actor before it is applied. 404 "
                        "unknown, 409 decided already or changed since read."
                    ),
                    "security": _DESK,
                    "parameters": [_param("transit_id", "path", "The transit", True)],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("DecisionIn")}},
                    },
                    "responses": {
                        "200": json_response("DecisionOut", "Decided"),
                        "404": json_response("ErrorOut", "No such item"),
                        "409": json_response("ErrorOut", "Decided already, or changed"),
                        **errors,
                    },
                }
            },
            "/v1/transits/search": {
                "get": {
                    "summary": "Transits by plate and day, or by gate and window (operator, admin)",
                    "description": (
                        "Either plate and day (YYYY-MM-DD, local), or gate, from and to "
                        "(RFC 3339, at most 24 hours apart). A reason is required (header "
                        "X-Reason, or query reason); the search is written to the audit trail "
                        "before it is answered. Only within retention (retention.allowed): a "
                        "window wholly before it is 422 naming the field. At most `limit` "
                        "(default 500, at most 1000) transits; `truncated` says when more match."
                    ),
                    "security": _DESK,
                    "parameters": [
                        _param("plate", q, "A plate (normalised as reads are)"),
                        _param("day", q, "With plate: a local day, YYYY-MM-DD"),
                        _param("gate", q, "A gate code"),
                        _param("from", q, "With gate: RFC 3339"),
                        _param("to", q, "With gate: RFC 3339, at most 24 h after from"),
                        _param("limit", q, "At most this many transits (1-1000)"),
                        _param("reason", q, "Why (prefer the X-Reason header)"),
                        _REASON_HEADER,
                    ],
                    "responses": {"200": json_response("SearchOut", "Transits"), **errors},
                }
            },
            "/v1/cameras/health": {
                "get": {
                    "summary": "Per camera: last read, the hour's reads, alarms (operator, admin)",
                    "security": _DESK,
                    "responses": {"200": json_response("CamerasOut", "Every camera"), **errors},
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
