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

from ..config.settings import CAMERA_ID, Settings
from ..core.police import PlateView
from ..core.rules import Rules
from ..core.verdict import Verdict
from ..transits.violations import ViolationPage
from . import apipaths
from .admission import UNMETERED
from .apidoc import PathDocs, error
from .schemas import BatchIn, BatchOut, ErrorOut, TransitIn


def openapi_document(
    settings: Settings, rules: Rules, extra: Sequence[PathDocs] = ()
) -> dict[str, Any]:
    """The document for this configuration (its gates, zones and cameras are enums), with the
    paths of the installed extensions `extra`. Not cached here: the app builds it once, on
    first request (after its extensions registered)."""
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
    for e in extra:
        components.update(e.components or {})
    _configured(components["TransitIn"]["properties"], settings, rules)
    document: dict[str, Any] = {
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
            **apipaths.transits(),
            **apipaths.plates(list(rules.zones)),
            **apipaths.violations(),
            # Extensions' API paths after the service's own, before the operational ones.
            **{path: ops for e in extra for path, ops in e.paths.items()},
            **apipaths.operational(),
        },
    }
    _admission(document["paths"], settings)
    return document


_RETRY = {"Retry-After": "Seconds to wait before retrying"}


def _admission(paths: dict[str, Any], settings: Settings) -> None:
    """What admission control and rate limits (admission.py, ratelimit.py) may answer on
    every operation they guard: 503 `overloaded` on all but health, readiness and metrics,
    and, with `server.key_rate`, 429 on those that take a key."""
    for path, operations in paths.items():
        if path in UNMETERED:
            continue
        for op in operations.values():
            responses = op["responses"]
            if "503" in responses:
                own = dict(responses["503"])
                own["description"] += "; or the service is overloaded (`overloaded`)"
                own["headers"] = {**own.get("headers", {}), **_header(_RETRY)}
                responses["503"] = own
            else:
                responses["503"] = error("The service is overloaded (`overloaded`)", _RETRY)
            if settings.server.key_rate > 0 and any("bearer" in s for s in op.get("security", ())):
                limited = "The key's rate limit (`rate_limited`)"
                if "429" in responses:  # the operation's own 429 (sign-in's lock-out)
                    own = dict(responses["429"])
                    own["description"] += f"; or {limited[0].lower()}{limited[1:]}"
                    responses["429"] = own
                else:
                    responses["429"] = error(limited, _RETRY)


def _header(headers: dict[str, str]) -> dict[str, Any]:
    return {h: {"description": text, "schema": {"type": "string"}} for h, text in headers.items()}


def _configured(transit: dict[str, Any], settings: Settings, rules: Rules) -> None:
    """A native transit's gate is one of the configuration's (422 otherwise), its camera a
    registered one (422), or in the demo any well-formed camera id (registry.check_native)."""
    transit["gate"] = {"type": "string", "enum": sorted(rules.gates)}
    if settings.demo or not settings.cameras:
        transit["camera"] = {"type": "string", "pattern": f"^{CAMERA_ID.pattern}$"}
    else:
        transit["camera"] = {"type": "string", "enum": sorted(settings.cameras)}


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
