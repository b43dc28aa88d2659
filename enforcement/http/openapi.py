"""The OpenAPI 3.1 document the service serves, and a plain HTML page rendering it.

Schemas come from the msgspec structs the handlers decode and encode, so the document cannot
drift from the code. Routes an extension adds (`create_app(extend=...)`, the admin API) come
with a `PathDocs` registered on the `Service`: the document lists them exactly when installed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import msgspec

from ..audit.chain import REASON_MAX
from ..core.police import PlateView
from ..core.verdict import Verdict
from ..transits.violations import ViolationPage
from .apidoc import ERRORS, PathDocs, json_response, ref
from .schemas import BatchIn, BatchOut, ErrorOut, TransitIn


def openapi_document(extra: Sequence[PathDocs] = ()) -> dict[str, Any]:
    """The document, with the paths of the installed extensions `extra`. Not cached here: the
    app builds it once, on first request (after its extensions registered)."""
    (_, components) = msgspec.json.schema_components(
        [
            TransitIn,
            BatchIn,
            Verdict,
            BatchOut,
            ErrorOut,
            PlateView,
            ViolationPage,
            *(t for e in extra for t in e.schemas),
        ],
        ref_template="#/components/schemas/{name}",
    )
    camera: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Varco",
            "version": "1",
            "description": (
                "Gate enforcement and whitelist lookup for ZTLs. Verdicts: allowed, "
                "not_enforced, pending (until grace_until), review. Roles: camera "
                "(transits), police (plate lookups), operator (violations), admin (all); by "
                "API key, or for people by a sign-in session (POST /v1/session)."
            ),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/transits": {
                "post": {
                    "summary": "Check one transit (camera, admin)",
                    "description": (
                        "Answered once the transit is recorded (Redis, or the local fsynced "
                        "spool). A retry of the same (camera, event_id) gets the standing "
                        "verdict and transit_id and records nothing. To correct a read, post "
                        "the same event_id with the corrected plate within the correction "
                        "window (10 minutes) of it: it is judged again and recorded under the "
                        "same transit_id; later, the event_id names another passage. 503 "
                        "spool_full with Retry-After when it cannot be recorded."
                    ),
                    "security": camera,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("TransitIn")}},
                    },
                    "responses": {"200": json_response("Verdict", "The verdict"), **ERRORS},
                }
            },
            "/v1/transits/batch": {
                "post": {
                    "summary": "Check up to max_batch transits at once (camera, admin)",
                    "security": camera,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": ref("BatchIn")}},
                    },
                    "responses": {
                        "200": json_response("BatchOut", "One verdict per transit, in order"),
                        **ERRORS,
                    },
                }
            },
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
                    "security": camera,
                    "parameters": [
                        {
                            "name": "plate",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "X-Reason",
                            "in": "header",
                            "required": False,
                            "description": "Why the plate is looked up (case number, check); "
                            "this or the reason parameter is required",
                            "schema": {"type": "string", "minLength": 1, "maxLength": REASON_MAX},
                        },
                        {
                            "name": "reason",
                            "in": "query",
                            "required": False,
                            "description": "The reason, if the X-Reason header cannot be sent",
                            "schema": {"type": "string", "minLength": 1, "maxLength": REASON_MAX},
                        },
                        {
                            "name": "at",
                            "in": "query",
                            "required": False,
                            "description": "RFC 3339 instant with offset; default now",
                            "schema": {"type": "string", "format": "date-time"},
                        },
                        {
                            "name": "zone",
                            "in": "query",
                            "required": False,
                            "description": "Only this zone's verdict; default every zone",
                            "schema": {"type": "string"},
                        },
                    ],
                    "responses": {
                        "200": json_response(
                            "PlateView", "Permits, verdict per zone, near-matches"
                        ),
                        **ERRORS,
                        "422": json_response(
                            "ErrorOut",
                            "A parameter is invalid, or the reason is missing (field: reason)",
                        ),
                        "503": json_response(
                            "ErrorOut",
                            "The lookup cannot be written "
                            "to the audit trail (audit_unavailable; "
                            "Retry-After), or no index loaded yet",
                        ),
                    },
                }
            },
            "/v1/violations": {
                "get": {
                    "summary": "Confirmed violations, by first transit instant (operator, admin)",
                    "description": (
                        "At most one violation per plate, zone and local calendar day, with every "
                        "transit id of that day. Paged: pass next_cursor back as cursor."
                    ),
                    "security": camera,
                    "parameters": [
                        {
                            "name": "from",
                            "in": "query",
                            "required": False,
                            "description": "YYYY-MM-DD (local midnight) or RFC 3339; default: all",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "required": False,
                            "description": "exclusive; YYYY-MM-DD or RFC 3339; default: tomorrow",
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "cursor",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "required": False,
                            "schema": {
                                "type": "integer",
                                "minimum": 1,
                                "maximum": 5000,
                                "default": 500,
                            },
                        },
                        {
                            "name": "format",
                            "in": "query",
                            "required": False,
                            "schema": {"enum": ["json", "csv"], "default": "json"},
                        },
                    ],
                    "responses": {
                        "200": json_response(
                            "ViolationPage", "A page of violations (text/csv with format=csv)"
                        ),
                        **ERRORS,
                        "503": json_response("ErrorOut", "No Redis reachable"),
                    },
                }
            },
            # Extensions' API paths after the service's own, before the operational ones.
            **{path: ops for e in extra for path, ops in e.paths.items()},
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": {"description": "The process answers"}},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: a verified, fresh index is loaded",
                    "responses": {
                        "200": {"description": "Ready"},
                        "503": {"description": "Not ready; says why"},
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {"200": {"description": "Text exposition format"}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
    }


def docs_html(doc: dict[str, Any]) -> str:
    """A plain page listing `doc`'s operations and schemas."""
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            rows.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(op['summary'])}</p>"
                f"<p>{html.escape(op.get('description', ''))}</p>"
            )
    schemas = html.escape(json.dumps(doc["components"]["schemas"], indent=2))
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>Varco API</title>"
        "<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60em;margin:2em auto;"
        "padding:0 1em}code,pre{background:#f4f4f4}pre{padding:1em;overflow:auto}</style>"
        f"<h1>Varco API v1</h1><p>{html.escape(doc['info']['description'])}</p>"
        "<p>Machine-readable: <a href=/openapi.json>/openapi.json</a>. Errors are "
        '<code>{"error": code, "detail": text, "field": name}</code>.</p>'
        + "".join(rows)
        + f"<h2>Schemas</h2><pre>{schemas}</pre></html>"
    )
