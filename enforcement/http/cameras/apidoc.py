"""The camera vendors' endpoints in the OpenAPI description (routes.py registers `docs`).

Each vendor's body schema is generated from the struct its JSON decoder reads, so it cannot
drift from the parser: the fields the check reads, each a scalar (string, number, boolean or
null) or the nested block the vendor sends; any other field is allowed and skipped unread
(firmware add fields, pictures are never decoded). XML (Hikvision) is the same event, found by
local element name; multipart bodies carry it in the part the vendor names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from ..apidoc import BODY, PathDocs, error, errors, json_response, ref
from ..schemas import ErrorOut
from . import axis, dahua, hikvision, milesight, platerecognizer, rekor

JSON: Final = "application/json"
_BINARY: Final = {"type": "string", "format": "binary"}

# vendor -> (title, description, its JSON body struct)
_FORMATS: Final[dict[str, tuple[str, str, Any]]] = {
    "hikvision": (
        "Hikvision ISAPI ANPR",
        "`EventNotificationAlert` (eventType ANPR) as XML, JSON, or multipart/form-data "
        "with an `anpr.xml` part beside picture parts (dropped unread). Any namespace; "
        "a DTD or entity declaration is refused. Other event types (heartbeats) are "
        "acknowledged and ignored.",
        hikvision.JSON_DECODER.type,
    ),
    "axis": (
        "AXIS License Plate Verifier",
        "The event JSON, alone or as the `event` part of multipart/form-data beside an "
        "`image` part. The new, updated and lost events of one car are one transit.",
        axis.DECODER.type,
    ),
    "milesight": (
        "Milesight LPR",
        "Flat JSON of strings (`-` = missing), local time without offset (the "
        "camera's `timezone`); keys in any case, spaces or dashes for underscores.",
        milesight.DECODER.type,
    ),
    "platerecognizer": (
        "Plate Recognizer Snapshot and Stream webhooks",
        "`{hook, data: {results: [...], camera_id, timestamp}}` as JSON, or "
        "multipart with a `json` part and an `upload` part. One transit per "
        "result; `results: []` is one unreadable transit.",
        platerecognizer.DECODER.type,
    ),
    "rekor": (
        "Rekor Scout / OpenALPR agent",
        "`alpr_group` (a preview is acknowledged and ignored: the complete group is "
        "the transit), `alpr_results`, `heartbeat`; any or no Content-Type.",
        rekor.DECODER.type,
    ),
    "dahua": (
        "Dahua ITSAPI push",
        "`{Picture: {Plate, SnapInfo, Vehicle, ...}}`, local time (the camera's "
        "`timezone`); answered `{Result: true}`.",
        dahua.DECODER.type,
    ),
}

_AUTH: Final = (
    " Authenticate with the camera's own key (`Authorization: Bearer KEY`), its URL "
    "token (in the path, or `?token=`), HTTP Basic with the camera id and its "
    "token, or HTTP Digest with the camera id and its password (realm `varco`, "
    "`[cameras.ID] digest_ha1`). The gate is the camera's, from `[cameras.ID]`; "
    "pictures are never stored; bodies up to `server.max_camera_body_bytes` "
    "(8 MiB)."
)
_TOKEN: Final = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The camera's URL token",
    "schema": {"type": "string", "minLength": 1},
}


def _name(vendor: str) -> str:
    return f"{vendor.capitalize()}Body"


def _components() -> dict[str, Any]:
    """Every vendor's body schema, its nested structs named after the vendor (two vendors'
    `_Plate` are different structs)."""
    out: dict[str, Any] = {}
    for vendor, (_, _, body) in _FORMATS.items():
        prefix = vendor.capitalize()
        (top,), nested = msgspec.json.schema_components(
            [body], ref_template=f"#/components/schemas/{prefix}{{name}}"
        )
        for name, schema in nested.items():
            out[f"{prefix}{name}"] = schema
        out[_name(vendor)] = top
    # Hikvision's wrapped event (`{"EventNotificationAlert": {...}}`) is read one level deep:
    # described so, without the self-reference (which generators cannot unfold).
    alert = out["Hikvision_Alert"]
    inner = {**alert, "properties": dict(alert["properties"])}
    del inner["properties"]["EventNotificationAlert"]
    alert["properties"]["EventNotificationAlert"] = {"anyOf": [inner, {"type": "null"}]}
    return out


def _content(vendor: str) -> dict[str, Any]:
    body = ref(_name(vendor))
    if vendor == "hikvision":
        # The XML form is the JSON form's fields as elements, found by local name at any depth
        # and read as text: XML has no types to check, so it is described as the document
        # itself. In multipart, the part so described is found by its name, file name or type.
        xml = {
            **_BINARY,
            "contentMediaType": "application/xml",
            "description": "An EventNotificationAlert document, the HikvisionBody fields as "
            "elements; no DTD or entity declarations",
        }
        return {
            "application/xml": {"schema": xml},
            JSON: {"schema": body},
            "multipart/form-data": _multipart({"anpr.xml": xml}, ("picture",), "application/xml"),
        }
    if vendor == "axis":
        return {JSON: {"schema": body}, "multipart/form-data": _multipart({"event": body})}
    if vendor == "platerecognizer":
        return {JSON: {"schema": body}, "multipart/form-data": _multipart({"json": body})}
    return {JSON: {"schema": body}}


def _multipart(
    event: dict[str, Any], pictures: Iterable[str] = ("image", "upload"), kind: str = JSON
) -> dict[str, Any]:
    """The event part (required) and picture parts (dropped unread)."""
    ((name, schema),) = event.items()
    return {
        "schema": {
            "type": "object",
            "properties": {name: schema, **{p: _BINARY for p in pictures}},
            "required": [name],
        },
        "encoding": {name: {"contentType": kind}},
    }


def _operation(vendor: str, out: str, with_token: bool) -> dict[str, Any]:
    title, text, _ = _FORMATS[vendor]
    op: dict[str, Any] = {
        "summary": f"{title} (camera)",
        "description": text + _AUTH,
        "security": [] if with_token else [{"bearer": []}],
        "requestBody": {"required": True, "content": _content(vendor)},
        "responses": {
            "200": json_response(out, "One verdict per plate read"),
            **errors(
                BODY,
                e400=error("Body is not the vendor's format (or a DTD)"),
                e415=error("A Content-Encoding other than gzip or deflate"),
            ),
        },
    }
    if with_token:
        op["parameters"] = [_TOKEN]
    return {"post": op}


def _keepalive(with_token: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": "Dahua ITSAPI keep-alive (camera)",
        "description": 'Answered `{"Result": true}`; the body is read and dropped.' + _AUTH,
        "security": [] if with_token else [{"bearer": []}],
        # `{"Active": "keepAlive", ...}` as the cameras send it, but any body is read (within
        # the cap) and dropped unparsed: nothing in it is checked, so nothing is refused.
        "requestBody": {"required": False, "content": {JSON: {"schema": {}}}},
        "responses": {
            "200": json_response("DahuaOut", '{"Result": true}'),
            **errors(
                ("400", "401", "403", "413", "415"),
                e400=error("A compressed body that does not inflate"),
                e415=error("A Content-Encoding other than gzip or deflate"),
            ),
        },
    }
    if with_token:
        op["parameters"] = [_TOKEN]
    return {"post": op}


def docs(vendors: Iterable[str], out_types: tuple[type, ...]) -> PathDocs:
    """The paths of `vendors`' routes; `out_types` are the answers' structs (routes.py)."""
    paths: dict[str, Any] = {}
    for vendor in vendors:
        out = "DahuaOut" if vendor == "dahua" else "CameraOut"
        paths[f"/v1/cameras/{vendor}"] = _operation(vendor, out, False)
        paths[f"/v1/cameras/{vendor}/{{token}}"] = _operation(vendor, out, True)
    paths["/NotificationInfo/TollgateInfo"] = _operation("dahua", "DahuaOut", False)
    paths["/v1/cameras/dahua/{token}/NotificationInfo/TollgateInfo"] = _operation(
        "dahua", "DahuaOut", True
    )
    paths["/NotificationInfo/KeepAlive"] = _keepalive(False)
    paths["/v1/cameras/dahua/{token}/NotificationInfo/KeepAlive"] = _keepalive(True)
    return PathDocs(paths, (*out_types, ErrorOut), _components())
