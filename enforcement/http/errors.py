"""Errors the API returns: each carries its HTTP status and a stable machine-readable code.

One middleware turns them into `{"error": code, "detail": ..., "field": ...}`; nothing else in
the service builds error bodies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import msgspec


class ApiError(Exception):
    status = 400
    code = "bad_request"
    retry_after: int | None = None  # seconds, sent as Retry-After

    def __init__(
        self, detail: str, field: str | None = None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail, self.field = detail, field
        # Response headers in place of the defaults (a camera route's Digest challenge)
        self.headers = headers


class MalformedBody(ApiError):
    status, code = 400, "malformed_json"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Invalid(ApiError):
    status, code = 422, "invalid"


class NotReady(ApiError):
    status, code = 503, "not_ready"


class SpoolFull(ApiError):
    """Redis cannot take transits and the local spool is full: the camera must retry."""

    status, code, retry_after = 503, "spool_full", 5


_AT = re.compile(r" - at `\$(.*)`$")


def from_msgspec(exc: msgspec.MsgspecError) -> ApiError:
    """Map a msgspec decode error to 400 (not JSON) or 422 (wrong shape), naming the field."""
    if isinstance(exc, msgspec.ValidationError):
        text = str(exc)
        m = _AT.search(text)
        field = m.group(1).lstrip(".") if m else None
        detail = text[: m.start()] if m else text
        if detail.startswith(("Object contains unknown field", "Object missing required field")):
            name = detail.split("`")[1]
            field = f"{field}.{name}" if field else name
        return Invalid(detail, field or None)
    return MalformedBody(f"body is not valid JSON: {exc}")


class AuditUnavailable(ApiError):
    """The lookup could not be recorded in the audit trail, so it is refused (fail closed)."""

    status, code, retry_after = 503, "audit_unavailable", 1


class Conflict(ApiError):
    """The state changed under the request (a review item decided already)."""

    status, code = 409, "conflict"
