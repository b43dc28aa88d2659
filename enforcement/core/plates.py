"""Licence plates: one normalisation used everywhere, and the plate <-> int64 key mapping.

A plate is normalised to upper-case `[0-9A-Z]` with separators removed (NFKC, Greek and
Cyrillic look-alike letters mapped to Latin, accents dropped). The raw text is always kept
beside it. A normalised plate of 1..11 characters maps one-to-one onto a positive int64
(`int("1" + plate, 36)`), so the index is a sorted integer array with no hash collisions.

Italian car plates (`LL DDD LL`, never I, O, Q, U) get OCR confusions fixed by position, but
only when exactly one valid Italian plate is reachable and the read is not already valid.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator
from typing import Final, NamedTuple

# Reads that mean "the camera saw no plate" (vendors differ); all are `review`, never `pending`.
# ("No Plates": Milesight's; separators are dropped before the comparison.)
SENTINELS: Final = frozenset(
    {"", "UNKNOWN", "NOPLATE", "NOPLATES", "NONE", "NULL", "NA", "N/A", "-", "--"}
)

# Greek and Cyrillic capitals that look like Latin ones; OCR engines trained on mixed alphabets
# return them, and a permit registered with Latin letters must still match.
_LOOKALIKES: Final = str.maketrans(
    {
        # Cyrillic
        "А": "A",
        "В": "B",
        "Е": "E",
        "К": "K",
        "М": "M",
        "Н": "H",
        "О": "O",
        "Р": "P",
        "С": "C",
        "Т": "T",
        "Х": "X",
        "У": "Y",
        "І": "I",
        "Ј": "J",
        "Ѕ": "S",
        "Ү": "Y",
        # Greek
        "Α": "A",
        "Β": "B",
        "Ε": "E",
        "Ζ": "Z",
        "Η": "H",
        "Ι": "I",
        "Κ": "K",
        "Μ": "M",
        "Ν": "N",
        "Ο": "O",
        "Ρ": "P",
        "Τ": "T",
        "Υ": "Y",
        "Χ": "X",
    }
)

_CLEAN: Final = re.compile(r"[0-9A-Z]{1,11}")
_SEPARATORS: Final = re.compile(r"[\s\-._·•/\\|,:;'\"]+")

# Letters Italian plates never use (confusable with digits or each other).
_IT_FORBIDDEN: Final = frozenset("IOQU")
_IT_ANY: Final = re.compile(r"[A-HJ-NPR-TV-Z]{2}[0-9]{3}(?:[A-HJ-NPR-TV-Z]{2}|[0-9]{2})")

# OCR confusions, per the character class a position needs.
_TO_DIGIT: Final = {
    "O": "0",
    "D": "0",
    "Q": "0",
    "I": "1",
    "L": "1",
    "B": "8",
    "S": "5",
    "Z": "2",
    "G": "6",
    "T": "7",
}
_TO_LETTER: Final = {"0": "D", "1": None, "8": "B", "5": "S", "2": "Z", "6": "G", "7": "T"}
# Symmetric look-alike pairs used to find near-matches (both directions).
CONFUSABLE: Final = {
    "O": "0DQ",
    "0": "OD",
    "D": "0O",
    "Q": "O0",
    "I": "1L",
    "1": "IL",
    "L": "1I",
    "B": "8",
    "8": "B",
    "S": "5",
    "5": "S",
    "Z": "2",
    "2": "Z",
    "G": "6",
    "6": "G",
}


class Plate(NamedTuple):
    """A plate read: the raw text as received and its normalised form ("" if unreadable)."""

    raw: str
    text: str
    corrected: bool = False  # an Italian-format OCR fix was applied

    @property
    def readable(self) -> bool:
        return bool(self.text)


def normalise_text(raw: str) -> str:
    """Normalise a plate string; returns "" when it cannot be a plate (sentinel, bad chars)."""
    if _CLEAN.fullmatch(raw) and raw not in SENTINELS:  # the usual, clean upper-case read
        return raw
    text = unicodedata.normalize("NFKC", raw).upper().strip()
    if text in SENTINELS:
        return ""
    text = _SEPARATORS.sub("", text.translate(_LOOKALIKES))
    if not text.isascii():
        # Drop accents (Ä -> A): foreign plates print them, registries store the base letter.
        text = "".join(
            c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
        ).translate(_LOOKALIKES)
    if text in SENTINELS or not _CLEAN.fullmatch(text):
        return ""
    return text


def is_italian(text: str) -> bool:
    """A current Italian car (`LL DDD LL`) or motorcycle (`LL DDDDD`) plate."""
    return _IT_ANY.fullmatch(text) is not None


def fix_italian(text: str) -> str | None:
    """Fix OCR confusions by position so the read becomes a valid Italian plate.

    Returns the fixed plate only when the read is not valid as it stands and exactly one
    Italian format (car `LL DDD LL` or motorcycle `LL DDDDD`) is reachable; otherwise None.
    """
    if len(text) != 7 or is_italian(text):
        return None
    results = set()
    for letters_at in ((0, 1, 5, 6), (0, 1)):  # car, motorcycle
        fixed = []
        for pos, ch in enumerate(text):
            if pos in letters_at:
                if ch.isdigit():
                    sub = _TO_LETTER.get(ch)
                    if sub is None:
                        break
                    ch = sub
                if ch in _IT_FORBIDDEN:
                    break
            elif not ch.isdigit():
                sub = _TO_DIGIT.get(ch)
                if sub is None:
                    break
                ch = sub
            fixed.append(ch)
        else:
            candidate = "".join(fixed)
            if is_italian(candidate):
                results.add(candidate)
    return results.pop() if len(results) == 1 else None


# Clean and upper case, and nothing an Italian fix could change: a valid Italian plate, or
# any other length than the 7 characters of a car plate. (One match: this runs per transit.)
_SETTLED: Final = re.compile(rf"{_IT_ANY.pattern}|[0-9A-Z]{{1,6}}|[0-9A-Z]{{8,11}}")


def _settled(text: str) -> bool:
    """`text` is its own normalised form, whatever the country."""
    return _SETTLED.fullmatch(text) is not None and text not in SENTINELS


def normalise(raw: str, country: str | None = None) -> Plate:
    """Normalise a camera read. Italian fixes apply unless the camera says it is foreign."""
    if raw.isascii() and _settled(upper := raw.upper()):  # one match, whatever the case
        return Plate(raw, upper)  # the usual read (Plate Recognizer's in lower case)
    text = normalise_text(raw)
    if text and (country is None or country.upper() in ("IT", "I", "ITA")):
        fixed = fix_italian(text)
        if fixed is not None:
            return Plate(raw, fixed, corrected=True)
    return Plate(raw, text)


def plate_key(text: str) -> int:
    """The int64 key of a normalised plate (one-to-one; the leading 1 keeps leading zeros)."""
    return int("1" + text, 36)


def key_plate(key: int) -> str:
    """Inverse of plate_key."""
    digits = []
    while key:
        key, rem = divmod(key, 36)
        digits.append("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[rem])
    return "".join(reversed(digits))[1:]


def confusable_variants(text: str) -> list[str]:
    """Plates one OCR confusion away from `text` (single substitutions), for near-matches."""
    out = []
    for i, ch in enumerate(text):
        for sub in CONFUSABLE.get(ch, ""):
            out.append(text[:i] + sub + text[i + 1 :])
    return out


MAX_ALTERNATIVES: Final = 10  # a camera's alternative reads checked per transit


def alternatives(reads: Iterable[str], country: str | None, best: Plate) -> Iterator[str]:
    """A camera's alternative reads of one plate, normalised like the read itself, without
    the best read `best`, blanks or repeats; at most MAX_ALTERNATIVES. Lazy: only a transit
    no permit covers looks at them, and most transits are covered."""
    seen = {best.text}
    for raw in reads:
        raw = raw.strip()
        if raw == best.raw or len(raw) > 64:  # vendors list the best read among them
            continue
        text = normalise(raw, country).text
        if text not in seen and text:
            seen.add(text)
            yield text
            if len(seen) > MAX_ALTERNATIVES:
                return
