"""The service's own operations in the OpenAPI description: native transits, police lookups,
violations, and the operational endpoints. Each lists the responses it can give and no other
(apidoc.py); parameters carry the constraints the handlers check, with the configuration's
zones where a value must be one of them (openapi.py builds the document per configuration)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .apidoc import BEARER, BODY, DAY_OR_INSTANT, QUERY, REASON, error, errors, json_response, ref
from .params import CURSOR_PATTERN, LIMIT_MAX, PLATE_PATTERN


def _query(name: str, schema: dict[str, Any], description: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        out["description"] = description
    return out


def transits() -> dict[str, Any]:
    return {
        "/v1/transits": {
            "post": {
                "summary": "Check one transit (camera, admin)",
                "description": (
                    "Answered once the transit is recorded (Redis, or the local fsynced "
                    "spool). A retry of the same (camera, event_id) gets the standing "
                    "verdict and transit_id and records nothing. To correct a read, post "
                    "the same event_id with the corrected plate within the correction "
                    "window (10 minutes) of it: it is judged again and recorded under the "
                    "same transit_id; later, the event_id names another passage. A camera "
                    "key posts only for its cameras, each at its own gate (403). 503 "
                    "spool_full with Retry-After when it cannot be recorded."
                ),
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("TransitIn")}},
                },
                "responses": {
                    "200": json_response("Verdict", "The verdict"),
                    **errors(BODY, e503=_spool_full()),
                },
            }
        },
        "/v1/transits/batch": {
            "post": {
                "summary": "Check up to max_batch transits at once (camera, admin)",
                "security": BEARER,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref("BatchIn")}},
                },
                "responses": {
                    "200": json_response("BatchOut", "One verdict per transit, in order"),
                    **errors(BODY, e503=_spool_full()),
                },
            }
        },
    }


def _spool_full() -> dict[str, Any]:
    return error(
        "No verified permit index loaded yet, or the transit cannot be recorded "
        "(spool_full, with Retry-After)",
        {"Retry-After": "Seconds to wait before retrying"},
    )


def plates(zones: Sequence[str]) -> dict[str, Any]:
    return {
        "/v1/plates/{plate}": {
            "get": {
                "summary": "Police view of a plate (police, admin)",
                "description": (
                    "Every lookup gives a reason (header X-Reason, or query parameter reason; "
                    "the header keeps it out of proxies' access logs) and is written to the "
                    "hash-chained audit trail (key id, role, instant, plate, at, zone, reason, "
                    "permits found) before it is answered; a lookup that cannot be recorded "
                    "is refused with 503."
                ),
                "security": BEARER,
                "parameters": [
                    {
                        "name": "plate",
                        "in": "path",
                        "required": True,
                        "description": "1 to 11 letters and digits, in any case, spaces, "
                        "dots and dashes between them ignored; not a no-read word (NA, NONE, "
                        "NULL, UNKNOWN, NOPLATE)",
                        "schema": {"type": "string", "pattern": f"^{PLATE_PATTERN}$"},
                    },
                    {
                        "name": "X-Reason",
                        "in": "header",
                        "required": False,
                        "description": "Why the plate is looked up (case number, check); "
                        "this or the reason parameter is required, not both",
                        "schema": REASON,
                    },
                    _query(
                        "reason",
                        REASON,
                        "The reason, if the X-Reason header cannot be sent",
                    ),
                    _query(
                        "at",
                        {"type": "string", "format": "date-time", "minLength": 1},
                        "RFC 3339 instant with offset, within the index's history; default now",
                    ),
                    _query(
                        "zone",
                        {"type": "string", "enum": list(zones)},
                        "Only this zone's verdict; default every zone",
                    ),
                ],
                "responses": {
                    "200": json_response("PlateView", "Permits, verdict per zone, near-matches"),
                    **errors(
                        QUERY,
                        e422=error(
                            "A parameter is invalid, or the reason is missing (field: reason)"
                        ),
                        e503=error(
                            "The lookup cannot be written to the audit trail "
                            "(audit_unavailable; Retry-After), or no index loaded yet",
                            {"Retry-After": "Seconds to wait before retrying"},
                        ),
                    ),
                },
            }
        }
    }


def violations() -> dict[str, Any]:
    return {
        "/v1/violations": {
            "get": {
                "summary": "Confirmed violations, by first transit instant (operator, admin)",
                "description": (
                    "At most one violation per plate, zone and local calendar day, with every "
                    "transit id of that day. Paged: pass next_cursor (or the X-Next-Cursor "
                    "header) back as cursor. CSV cells that a spreadsheet would read as a "
                    "formula are neutralised."
                ),
                "security": BEARER,
                "parameters": [
                    _query(
                        "from",
                        DAY_OR_INSTANT,
                        "YYYY-MM-DD (local midnight) or RFC 3339; default: all",
                    ),
                    _query(
                        "to",
                        DAY_OR_INSTANT,
                        "exclusive, after from; YYYY-MM-DD or RFC 3339; default: tomorrow",
                    ),
                    _query("cursor", {"type": "string", "pattern": f"^{CURSOR_PATTERN}$"}),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": LIMIT_MAX, "default": 500},
                    ),
                    _query("format", {"type": "string", "enum": ["json", "csv"]}, "default json"),
                ],
                "responses": {
                    "200": {
                        "description": "A page of violations (text/csv with format=csv)",
                        "headers": {
                            "X-Next-Cursor": {
                                "description": "The next page's cursor, if there is one",
                                "schema": {"type": "string", "pattern": f"^{CURSOR_PATTERN}$"},
                            }
                        },
                        "content": {
                            "application/json": {"schema": ref("ViolationPage")},
                            "text/csv": {"schema": {"type": "string"}},
                        },
                    },
                    **errors(QUERY, e503=error("No Redis reachable")),
                },
            }
        }
    }


def _plain(summary: str, kind: str, description: str) -> dict[str, Any]:
    schema = {"type": "object"} if kind == "application/json" else {"type": "string"}
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {"description": description, "content": {kind: {"schema": schema}}}
            },
        }
    }


def operational() -> dict[str, Any]:
    ready = _plain("Readiness: a verified, fresh index is loaded", "application/json", "Ready")
    ready["get"]["responses"]["503"] = {
        "description": "Not ready; says why",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return {
        "/healthz": _plain("Liveness", "application/json", "The process answers"),
        "/readyz": ready,
        "/metrics": _plain("Prometheus metrics", "text/plain", "Text exposition format"),
        "/openapi.json": _plain("This document", "application/json", "OpenAPI 3.1"),
        "/docs": _plain("This document in Swagger UI (try calls with a key)", "text/html", "HTML"),
        "/docs/plain": _plain("This document as a plain page", "text/html", "HTML"),
    }
