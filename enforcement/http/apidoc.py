"""The pieces every route module documents itself with in the OpenAPI description: references
to schemas, the error responses an operation can give (each lists only its own: a GET has no
body to be too large or of the wrong type), and `PathDocs` for routes an extension adds (the
admin API, the camera vendors), which openapi.py merges into the document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..audit.chain import REASON_MAX


def ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(
    name: str, description: str, headers: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A JSON response of schema `name`, with the optional `headers` (name -> description)."""
    out: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ref(name)}},
    }
    if headers:
        out["headers"] = {
            h: {"description": text, "schema": {"type": "string"}} for h, text in headers.items()
        }
    return out


def error(description: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An error response: `{"error": code, "detail": text, "field": name}`."""
    return json_response("ErrorOut", description, headers)


ERRORS: Final = {
    "400": error("Body is not JSON"),
    "401": error(
        "Missing or unknown API key",
        {"WWW-Authenticate": "The schemes accepted (Bearer; Digest on camera routes)"},
    ),
    "403": error("The key's role may not call this endpoint"),
    "413": error("Body or batch too large"),
    "415": error(
        "Content-Type is not application/json, or a Content-Encoding other than gzip or deflate"
    ),
    "422": error("A field is missing, unknown or invalid; `field` names it"),
    "503": error("No verified permit index loaded yet"),
}
BEARER: Final[list[dict[str, list[str]]]] = [{"bearer": []}]
# A reason given with a request: one line of text, no control characters or line breaks,
# and not only blanks (params.valid_reason and reason_of refuse anything else, 422).
_LINE: Final = r"[^\u0000-\u001f\u007f-\u009f\u2028\u2029]"
REASON: Final = {
    "type": "string",
    "minLength": 1,
    "maxLength": REASON_MAX,
    "pattern": rf"^{_LINE}*[^\s\u0000-\u001f\u007f-\u009f\u2028\u2029]{_LINE}*$",
}
DAY_OR_INSTANT: Final = {
    "type": "string",
    "anyOf": [{"format": "date", "maxLength": 10}, {"format": "date-time"}],
}
# What a request carrying a body can be refused with, and one without.
BODY: Final = ("400", "401", "403", "413", "415", "422", "503")
QUERY: Final = ("401", "403", "422", "503")


def errors(codes: tuple[str, ...], **described: dict[str, Any]) -> dict[str, Any]:
    """The error responses `codes`, the usual ones unless `described` (key `e422` for 422)
    gives the operation's own."""
    return {code: described.get(f"e{code}", ERRORS[code]) for code in codes}


@dataclass(frozen=True, slots=True)
class PathDocs:
    """Paths an extension adds to the document, and the structs their `ref`s name (their
    schemas are generated with the service's, so a shared struct such as ErrorOut is one);
    `components` are ready-made schemas (the vendors' bodies) added as they are."""

    paths: Mapping[str, Any]
    schemas: tuple[type, ...] = ()
    components: Mapping[str, Any] | None = None
