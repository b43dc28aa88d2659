"""The OpenAPI 3.1 document the service serves, and a plain HTML page rendering it.

Schemas come from the msgspec structs the handlers decode and encode, so the document cannot
drift from the code. Routes an extension adds (`create_app(extend=...)`, the admin API) come
with a `PathDocs` registered on the `Api`: the document lists them exactly when installed.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from .schemas import BatchIn, BatchOut, ErrorOut, PlateView, TransitIn
from .verdicts import Verdict


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(name)}}}


ERRORS = {
    "400": json_response("ErrorOut", "Body is not JSON"),
    "401": json_response("ErrorOut", "Missing or unknown API key"),
    "403": json_response("ErrorOut", "The key's role may not call this endpoint"),
    "413": json_response("ErrorOut", "Body or batch too large"),
    "415": json_response("ErrorOut", "Content-Type is not application/json"),
    "422": json_response("ErrorOut", "A field is missing, unknown or invalid; `field` names it"),
    "503": json_response("ErrorOut", "No verified permit index loaded yet"),
}


@dataclass(frozen=True, slots=True)
class PathDocs:
    """Paths an extension adds to the document, and the structs their `ref`s name (their
    schemas are generated with the service's, so a shared struct such as ErrorOut is one)."""

    paths: Mapping[str, Any]
    schemas: tuple[type, ...] = ()


def openapi_document(extra: Sequence[PathDocs] = ()) -> dict[str, Any]:
    """The document, with the paths of the installed extensions `extra`. Not cached here: the
    app builds it once, on first request (after its extensions registered)."""
    (_, components) = msgspec.json.schema_components(
        [TransitIn, BatchIn, Verdict, BatchOut, ErrorOut, PlateView,
         *(t for e in extra for t in e.schemas)],
        ref_template="#/components/schemas/{name}",
    )  # fmt: skip
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
                    "schema": ref("TransitIn")}}},
                "responses": {"200": json_response("Verdict", "The verdict"), **ERRORS},
            }},
            "/v1/transits/batch": {"post": {
                "summary": "Check up to max_batch transits at once (camera, admin)",
                "security": camera,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": ref("BatchIn")}}},
                "responses": {"200": json_response("BatchOut", "One verdict per transit, in order"),
                              **ERRORS},
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
                "responses": {"200": json_response("PlateView",
                                                   "Permits, verdict per zone, near-matches"),
                              **ERRORS},
            }},
            # Extensions' API paths after the service's own, before the operational ones.
            **{path: ops for e in extra for path, ops in e.paths.items()},
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
