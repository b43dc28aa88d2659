"""The pieces every route module documents itself with in the OpenAPI description: references
to schemas, the common error responses, and `PathDocs` for routes an extension adds (the
admin API, the camera vendors), which openapi.py merges into the document."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


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
