"""Vendor field values -> Varco's: missing markers, plate text, confidence, country.

Vendors disagree on all of these: Milesight sends every value as a string and `"-"` for a
missing one; confidence comes as 0-1 (Plate Recognizer, Axis), 0-100 (Hikvision, Rekor) or a
string of either; countries come as ISO alpha-2 or alpha-3 codes, lower-case region codes
(`it`, `us-ca`), English names (`Italy`) or vendor numbers. A missing confidence is unknown
(None), never 0: a 0 would send every read without one to review as low-confidence.
"""

from __future__ import annotations

import functools
import math
from typing import Final

from .. import errors

# Strings vendors send for "no value" (compared lower-case, stripped).
MISSING: Final = frozenset({"", "-", "--", "null", "none", "n/a", "na", "nan"})
MAX_PLATE: Final = 64  # TransitIn.plate

Scalar = str | int | float | bool | None


def present(value: Scalar) -> str | None:
    """The value as text, or None when missing (None, "", "-", "null", ...)."""
    if type(value) is str:  # the usual case first: this runs for every kept field
        text = value.strip()
        return None if len(text) <= 4 and text.lower() in MISSING else text
    if value is None:
        return None
    if type(value) is int:  # camera ids, counters: digits, never a missing marker
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    text = str(value).strip()
    return None if text.lower() in MISSING else text


def plate(value: Scalar, field: str) -> str:
    """The raw plate read: "" when the vendor sent nothing (the check calls it unreadable)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.Invalid(f"a plate is text, got {type(value).__name__}", field)
    text = value.strip()
    if len(text) > MAX_PLATE:
        raise errors.Invalid(f"a plate read has at most {MAX_PLATE} characters", field)
    return text


def confidence(value: Scalar, field: str, scale: float | None = None) -> float | None:
    """A confidence in 0-1, or None when missing. `scale` is the vendor's full scale (1 or
    100) when it is known; None guesses from the value (above 1 means a percentage)."""
    if type(value) is float or type(value) is int:  # the usual (a bool is neither)
        full = scale if scale is not None else (1 if value <= 1 else 100)
        if 0 <= value <= full:  # a number on its scale (NaN is not)
            return value / full
    if type(value) is float:
        number = value
    elif type(value) is int:  # exact: a bool is no int here
        number = float(value)
    elif value is None:
        return None
    elif isinstance(value, bool):
        raise errors.Invalid("a confidence is a number, got a boolean", field)
    elif isinstance(value, str):
        try:
            parsed = _number(value)
        except ValueError:
            raise errors.Invalid(f"{value!r} is not a confidence (a number)", field) from None
        if parsed is None:
            return None
        number = parsed
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise errors.Invalid("a confidence is a number", field)
    if not math.isfinite(number) or number < 0:
        raise errors.Invalid(f"{value!r} is not a confidence (0-1 or 0-100)", field)
    full = scale if scale is not None else (1.0 if number <= 1 else 100.0)
    if number > full:
        raise errors.Invalid(f"{value!r} is not a confidence (0-{full:g})", field)
    return number / full


@functools.lru_cache(maxsize=1024)  # a camera sends a few hundred distinct strings ("92")
def _number(value: str) -> float | None:
    """A confidence sent as text ("92", "0,92", "92 %"): the number, None when missing,
    ValueError when it is no number."""
    text = value.strip().rstrip("%").strip()
    if text.lower() in MISSING:
        return None
    return float(text.replace(",", "."))


# English and Italian names some firmware send instead of codes (Hikvision's newer ANPR).
_NAMES: Final = {
    "italy": "IT",
    "italia": "IT",
    "san marino": "SM",
    "vatican": "VA",
    "holy see": "VA",
    "france": "FR",
    "germany": "DE",
    "deutschland": "DE",
    "austria": "AT",
    "switzerland": "CH",
    "slovenia": "SI",
    "croatia": "HR",
    "spain": "ES",
    "portugal": "PT",
    "monaco": "MC",
    "united kingdom": "GB",
    "great britain": "GB",
    "ireland": "IE",
    "netherlands": "NL",
    "belgium": "BE",
    "luxembourg": "LU",
    "denmark": "DK",
    "sweden": "SE",
    "norway": "NO",
    "finland": "FI",
    "poland": "PL",
    "czech republic": "CZ",
    "czechia": "CZ",
    "slovakia": "SK",
    "hungary": "HU",
    "romania": "RO",
    "bulgaria": "BG",
    "greece": "GR",
    "albania": "AL",
    "serbia": "RS",
    "bosnia and herzegovina": "BA",
    "montenegro": "ME",
    "north macedonia": "MK",
    "moldova": "MD",
    "ukraine": "UA",
    "belarus": "BY",
    "russia": "RU",
    "lithuania": "LT",
    "latvia": "LV",
    "estonia": "EE",
    "turkey": "TR",
    "malta": "MT",
    "cyprus": "CY",
    "liechtenstein": "LI",
    "andorra": "AD",
}


def country(value: Scalar) -> str | None:
    """An ISO-style code (1-3 letters, upper case) for the plate check, or None when the
    vendor gave none or one we cannot read (numbers, unknown names): the raw value stays on
    the record, and without a country the check applies Italian fixes only where a read
    becomes exactly one valid Italian plate."""
    return _country(value) if isinstance(value, str) else None


@functools.lru_cache(maxsize=1024)  # a camera sends a handful of distinct values
def _country(value: str) -> str | None:
    text = present(value)
    if text is None or text.isdigit():
        return None
    code = text.split("-", 1)[0].strip()  # Plate Recognizer / Rekor regions: "it", "us-ca"
    if code.isascii() and code.isalpha() and len(code) <= 3:
        return code.upper()
    return _NAMES.get(text.lower())
