"""Validation of permit data against the city's rules, shared by every way permits come in.

`PermitInvalid` names the field and the reason, so an import reports "line 12: valid_to:
before valid_from" and an API answers 422 naming the same field.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from .index import END_UNLIMITED
from .localtime import LocalClock
from .plates import normalise_text
from .rules import Rules

MAX_PERMIT_ID_LEN: Final = 64
MAX_CUDE_PLATES: Final = 2
SOURCES: Final = ("municipal", "online", "regional", "cude", "other")
# One documented spelling each (any case): a value outside it, such as the "t" left of a
# "true" cut short, is refused, never read as one or the other.
_BOOLEANS: Final = {"true": True, "false": False}


class PermitInvalid(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        self.field, self.reason = field, reason
        super().__init__(f"{field}: {reason}")


def parse_instant(text: str, clock: LocalClock, field: str) -> int:
    """ISO 8601 with offset, or naive (local city time), or a date (local midnight)."""
    text = text.strip()
    if not text:
        raise PermitInvalid(field, "empty")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise PermitInvalid(field, f"{text!r} is not an ISO 8601 date-time") from None
    if value.tzinfo is None:
        return clock.from_local(value)
    return int(value.timestamp())


def parse_bool(text: str, field: str, default: bool) -> bool:
    """`true` or `false` (any case); empty: `default`."""
    t = text.strip().lower()
    if not t:
        return default
    value = _BOOLEANS.get(t)
    if value is None:
        raise PermitInvalid(field, f"{text!r} is not true or false")
    return value


def check_plate(raw: str, field: str = "plate") -> str:
    text = normalise_text(raw)
    if not text:
        raise PermitInvalid(field, f"{raw!r} is not a plate (1-11 letters and digits)")
    return text


def check_permit(
    rules: Rules,
    permit_id: str,
    type_: str,
    valid_from: int,
    valid_to: int | None,
    zones: tuple[str, ...],
    source: str,
    n_plates: int,
) -> None:
    """Raise PermitInvalid unless the permit fits the rules of its type."""
    if not permit_id or len(permit_id) > MAX_PERMIT_ID_LEN or not permit_id.isprintable():
        raise PermitInvalid("permit_id", f"must be 1-{MAX_PERMIT_ID_LEN} printable characters")
    ptype = rules.types.get(type_)
    if ptype is None:
        raise PermitInvalid(
            "type", f"unknown permit type {type_!r} (known: {', '.join(rules.types)})"
        )
    # The index keeps instants as unsigned 32-bit seconds (the top value meaning unlimited):
    # 1970 to 2106. Outside it a permit could be stored but never indexed or shown.
    for name, t in (("valid_from", valid_from), ("valid_to", valid_to)):
        if t is not None and not 0 <= t < END_UNLIMITED:
            raise PermitInvalid(
                name,
                "must lie between 1970 and 2106 (leave valid_to empty for an unlimited permit)",
            )
    if valid_to is not None and valid_to <= valid_from:
        raise PermitInvalid("valid_to", "must be after valid_from")
    if ptype.max_duration is not None:
        if valid_to is None:
            raise PermitInvalid(
                "valid_to",
                f"type {type_} lasts at most {ptype.max_duration.describe()}; an end is required",
            )
        if valid_to > ptype.max_duration.end_from(valid_from, rules.clock):
            raise PermitInvalid(
                "valid_to", f"longer than type {type_}'s maximum of {ptype.max_duration.describe()}"
            )
    for z in zones:
        if z not in rules.zones:
            raise PermitInvalid("zones", f"unknown zone {z!r} (known: {', '.join(rules.zones)})")
    if source not in SOURCES:
        raise PermitInvalid("source", f"{source!r} is not one of {', '.join(SOURCES)}")
    if ptype.cude and n_plates > MAX_CUDE_PLATES:
        raise PermitInvalid("plate", f"a CUDE badge holds at most {MAX_CUDE_PLATES} plates")


def parse_zones(text: str) -> tuple[str, ...]:
    """'A B', 'A|B', 'A;B' or 'A,B' -> ('A', 'B'); '' -> () meaning the type's zones."""
    for sep in "|;,":
        text = text.replace(sep, " ")
    return tuple(dict.fromkeys(text.split()))
