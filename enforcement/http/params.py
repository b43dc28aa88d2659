"""Parameters as the handlers read them: instants and whole numbers, each spelt one way only,
and the patterns and bounds the API description states for them (apipaths.py), so the two
cannot differ; 422 naming the parameter otherwise."""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

import msgspec

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
