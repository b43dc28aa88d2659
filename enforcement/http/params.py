"""Parameters as the handlers read them: instants and whole numbers, each spelt one way only,
and a reason (police lookups, transit searches, review decisions) and who is calling;
and the patterns and bounds the API description states for them (apipaths.py), so the two
cannot differ; 422 naming the parameter otherwise."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any, Final

import msgspec
from multidict import MultiMapping

from ..audit.chain import REASON_MAX
from ..core.rules import Rules
from . import errors

_DIGITS: Final = re.compile(r"[0-9]{1,10}")
# A plate as the police type it: 1 to 11 letters and digits, separators between them ignored.
# Letters include those foreign plates print (Latin with diacritics: MÜ is registered as MU)
# and the Greek and Cyrillic capitals that look like Latin ones, which normalise folds;
# plates.py refuses, 422, what normalise cannot fold.
PLATE_PATTERN: Final = r"[ .-]*(?:[0-9A-Za-z\u00C0-\u024F\u0370-\u03FF\u0400-\u04FF][ .-]*){1,11}"
# Violations: a page's size, and the cursor (an offset up to CURSOR_MAX) in decimal digits.
LIMIT_MAX: Final = 5000
CURSOR_MAX: Final = 10**9
CURSOR_PATTERN: Final = r"(?:[0-9]{1,9}|1000000000)"
# The desk: a review page's size and cursor (capture instant, transit id), a transit id, and a
# search's result cap.
REVIEW_LIMIT_MAX: Final = 500
REVIEW_CURSOR_PATTERN: Final = r"-?[0-9]{1,12}(?:\.[0-9]{1,9})?_[0-9a-f]{24}"
TRANSIT_ID_PATTERN: Final = r"[0-9a-f]{24}"
REASON_CODE_PATTERN: Final = r"[a-z_]{1,64}"  # a verdict's reason (low_confidence, ...)
SEARCH_LIMIT_MAX: Final = 1000


def rfc3339(text: str, field: str) -> dt.datetime:
    """An RFC 3339 date-time (msgspec's parser, as for a transit's `ts`: no other ISO 8601
    spelling), with its offset; 422 naming `field` otherwise."""
    try:
        value = msgspec.convert(text, dt.datetime)
    except msgspec.ValidationError:
        raise errors.Invalid(f"{text[:64]!r} is not an RFC 3339 date-time", field) from None
    if value.tzinfo is None:
        raise errors.Invalid("give the offset, e.g. 2026-11-22T10:00:00+01:00", field)
    return value


def bounded_int(text: str, field: str, lo: int, hi: int) -> int:
    """Decimal digits only (int() would also take '+5', ' 5' and '5_0')."""
    if not _DIGITS.fullmatch(text):
        raise errors.Invalid(f"{text[:64]!r} is not a whole number", field)
    value = int(text)
    if not lo <= value <= hi:
        raise errors.Invalid(f"{field} must be between {lo} and {hi}", field)
    return value


def instant(text: str | None, field: str, rules: Rules, *, default: float) -> float:
    """An RFC 3339 instant, or a local calendar day YYYY-MM-DD (its local midnight)."""
    if text is None:
        return default
    if len(text) != 10:
        return rfc3339(text, field).timestamp()
    try:
        day = msgspec.convert(text, dt.date)
    except msgspec.ValidationError:
        raise errors.Invalid(
            f"{text!r} is neither YYYY-MM-DD nor an RFC 3339 date-time", field
        ) from None
    return float(rules.clock.from_local(dt.datetime.combine(day, dt.time())))


def reason_of(
    headers: MultiMapping[str], query: MultiMapping[str], what: str = "a police lookup"
) -> str:
    """The lookup's reason, from header X-Reason or query parameter `reason`; 422 naming
    `reason` when missing, empty, given twice, too long, or with control characters. Free text
    from the police: error details never echo it."""
    given = [*headers.getall("X-Reason", ()), *query.getall("reason", ())]
    if len(given) > 1:
        raise errors.Invalid(
            "give the reason once: header X-Reason or query parameter reason", "reason"
        )
    text = given[0].strip() if given else ""
    if not text:
        # The header is the better channel: a query string ends up in proxies' access logs.
        raise errors.Invalid(
            f"{what} needs a reason: send header X-Reason (or query parameter reason)",
            "reason",
        )
    return valid_reason(text)


def valid_reason(text: str, field: str = "reason") -> str:
    """A given reason, stripped; 422 naming `field` when empty, too long, or not one line.
    Free text: error details never echo it."""
    text = text.strip()
    if not text:
        raise errors.Invalid("a reason is required", field)
    if len(text) > REASON_MAX:
        raise errors.Invalid(f"the reason has {len(text)} characters; at most {REASON_MAX}", field)
    # Cc/Zl/Zp: control characters and line breaks (they would forge lines in exports);
    # Cs: undecodable header bytes, which aiohttp hands over as lone surrogates.
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in text):
        raise errors.Invalid(
            "the reason must be one line of text, without control characters (UTF-8)", field
        )
    return text


def optional_reason(text: str | None, field: str = "reason") -> str:
    """A reason that may be left out ("" for none), else checked as `valid_reason`."""
    return valid_reason(text, field) if text and text.strip() else ""


def actor_of(caller: Any) -> tuple[str, str, str | None]:
    """(actor id, role, person) of `require`'s caller: an API key now; a person's session
    (accounts) carries `person` too."""
    return caller.id, caller.role, getattr(caller, "person", None)


def redis_down(exc: Exception) -> errors.ApiError:
    return errors.NotReady(f"Redis unavailable: {type(exc).__name__}")
