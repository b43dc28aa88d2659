"""The OpenAPI 3.1 document the service serves, and a plain HTML page rendering it.

Schemas come from the msgspec structs the handlers decode and encode, so the document cannot
drift from the code.
"""

from __future__ import annotations

import functools
import html
import json
from typing import Any

import msgspec

from .schemas import BatchIn, BatchOut, ErrorOut, PlateView, TransitIn
from .verdicts import Verdict


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


_ERRORS = {
    "400": _json("ErrorOut", "Body is not JSON"),
    "401": _json("ErrorOut", "Missing or unknown API key"),
    "403": _json("ErrorOut", "The key's role may not call this endpoint"),
    "413": _json("ErrorOut", "Body or batch too large"),
    "415": _json("ErrorOut", "Content-Type is not application/json"),
    "422": _json("ErrorOut", "A field is missing, unknown or invalid; `field` names it"),
    "503": _json("ErrorOut", "No verified permit index loaded yet"),
}


@functools.cache
def openapi_document() -> dict[str, Any]:
    (_, components) = msgspec.json.schema_components(
        [TransitIn, BatchIn, Verdict, BatchOut, ErrorOut, PlateView],
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
                "not_enforced, pending (until grace_until), review. Roles by API key: camera "
                "(transits), police (plate lookups), admin (both)."
            ),
        },
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/v1/transits": {"post": {
                "summary": "Check one transit (camera, admin)",
                "security": camera,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("TransitIn")}}},
                "responses": {"200": _json("Verdict", "The verdict"), **_ERRORS},
            }},
            "/v1/transits/batch": {"post": {
                "summary": "Check up to max_batch transits at once (camera, admin)",
                "security": camera,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("BatchIn")}}},
                "responses": {"200": _json("BatchOut", "One verdict per transit, in order"),
                              **_ERRORS},
            }},
            "/v1/plates/{plate}": {"get": {
                "summary": "Police view of a plate (police, admin)",
                "security": camera,
                "parameters": [
                    {"name": "plate", "in": "path", "required": True,
                     "schema": {"type": "string"}},
                    {"name": "at", "in": "query", "required": False,
                     "description": "RFC 3339 instant with offset; default now",
                     "schema": {"type": "string", "format": "date-time"}},
                    {"name": "zone", "in": "query", "required": False,
                     "description": "Only this zone's verdict; default every zone",
                     "schema": {"type": "string"}},
                ],
                "responses": {"200": _json("PlateView", "Permits, verdict per zone, near-matches"),
                              **_ERRORS},
            }},
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {
                "description": "The process answers"}}}},
            "/readyz": {"get": {"summary": "Readiness: a verified, fresh index is loaded",
                                "responses": {"200": {"description": "Ready"},
                                              "503": {"description": "Not ready; says why"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
                "description": "Text exposition format"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {
                "description": "OpenAPI 3.1"}}}},
        },
    }  # fmt: skip


@functools.cache
def docs_html() -> str:
    doc = openapi_document()
    rows = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            rows.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2>"
                f"<p>{html.escape(op['summary'])}</p>"
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
