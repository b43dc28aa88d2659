"""The values a city writes as text in its configuration file, and how each is read.

Durations ("72h", "6mo"), times of day ("07:30"), weekdays ("mon-fri"), yearly dates ("08-15")
and sha256 digests are typed fields of the file's sections (spec.py). `decode_value` reads them
as msgspec decodes the file, so a bad value fails there, with the path of its key
(`zones.B.grace: '1mo': months and years are not allowed here`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..core.rules import DAY_NAMES, Duration, Window

_DURATION: Final = re.compile(r"(\d+)\s*(mo|y|d|h|m|s)")
_UNITS_S: Final = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_HHMM: Final = re.compile(r"([01]\d|2[0-4]):([0-5]\d)")
_MMDD: Final = re.compile(r"(\d\d)-(\d\d)")
_SHA256: Final = re.compile(r"[0-9a-f]{64}")
_BYTES: Final = re.compile(r"(\d+)\s*(b|kb|mb|gb|tb)?")
_BYTE_UNITS: Final = {None: 1, "b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}


def parse_duration(text: str, *, allow_months: bool = True) -> Duration | None:
    """'2h', '6mo', '3y', '1d12h', 'unlimited' -> Duration (None for unlimited)."""
    text = text.strip().lower()
    if text in ("unlimited", "none", "0"):
        return None
    pos, months, seconds = 0, 0, 0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        n, unit = int(m.group(1)), m.group(2)
        if unit in ("mo", "y"):
            if not allow_months:
                raise ValueError(f"{text!r}: months and years are not allowed here")
            months += n * (12 if unit == "y" else 1)
        else:
            seconds += n * _UNITS_S[unit]
        pos = m.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (examples: 2h, 90m, 5d, 6mo, 3y, unlimited)")
    return Duration(months, seconds)


def parse_days(text: str) -> tuple[int, ...]:
    """'mon-fri', 'fri,sat', 'sat-mon', 'daily' -> weekday numbers (Monday = 0)."""
    text = text.strip().lower()
    if text in ("daily", "all", "mon-sun", "*"):
        return tuple(range(7))
    days: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (p.strip() for p in part.split("-", 1))
            if a not in DAY_NAMES or b not in DAY_NAMES:
                raise ValueError(f"{part!r}: days are mon, tue, wed, thu, fri, sat, sun")
            i, j = DAY_NAMES.index(a), DAY_NAMES.index(b)
            days.extend((i + k) % 7 for k in range((j - i) % 7 + 1))
        elif part in DAY_NAMES:
            days.append(DAY_NAMES.index(part))
        else:
            raise ValueError(f"{part!r}: days are mon, tue, wed, thu, fri, sat, sun")
    return tuple(sorted(set(days)))


def parse_time_of_day(text: str) -> int:
    """'07:30' -> minutes after midnight; '24:00' is the end of the day."""
    m = _HHMM.fullmatch(text.strip())
    if not m or (m.group(1) == "24" and m.group(2) != "00"):
        raise ValueError(f"{text!r} is not a time of day HH:MM (00:00-24:00)")
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_window(days: str, start_text: str, end_text: str) -> Window:
    """A weekly window; `end` at or before `start` crosses midnight."""
    start, end = parse_time_of_day(start_text), parse_time_of_day(end_text)
    if start == 1440:
        raise ValueError("a window cannot start at 24:00")
    if start == end:
        raise ValueError(f"window {start_text}-{end_text} is empty; use 00:00-24:00 for all day")
    return Window(parse_days(days), start, end % 1440)


class Seconds(int):
    """A duration in whole seconds, written as "90s", "5m", "72h", "1d12h" (no months)."""

    @classmethod
    def parse(cls, text: str) -> Seconds:
        d = parse_duration(text, allow_months=False)
        return cls(0 if d is None else d.seconds)


class PositiveSeconds(Seconds):
    """A duration that must be longer than nothing ("24h", "450d")."""

    @classmethod
    def parse(cls, text: str) -> PositiveSeconds:
        seconds = Seconds.parse(text)
        if seconds <= 0:
            raise ValueError(f"{text!r}: give a positive duration (e.g. 24h, 450d)")
        return cls(seconds)


class MaxDuration(str):
    """A permit type's longest validity: "2h", "6mo", "3y" or "unlimited"."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> MaxDuration:
        parse_duration(text)
        return cls(text)

    @property
    def duration(self) -> Duration | None:
        return parse_duration(self)


class MonthDay(str):
    """A day of every year, "MM-DD" ("02-29" included)."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> MonthDay:
        m = _MMDD.fullmatch(text.strip())
        if m:
            try:
                dt.date(2024, int(m.group(1)), int(m.group(2)))  # a leap year: 02-29 is valid
                return cls(text.strip())
            except ValueError:
                pass
        raise ValueError(f"{text!r} is not a date MM-DD")

    @property
    def month_day(self) -> tuple[int, int]:
        return int(self[:2]), int(self[3:])


class TimeZoneName(str):
    """An IANA time zone ("Europe/Rome")."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> TimeZoneName:
        try:
            ZoneInfo(text)
        except (ValueError, OSError, ZoneInfoNotFoundError):  # "Europe" is a directory
            raise ValueError(f"unknown time zone {text!r}") from None
        return cls(text)


class Sha256Hex(str):
    """The sha256 hex digest of a secret (`printf %s SECRET | sha256sum`), lower case."""

    __slots__ = ()

    @classmethod
    def parse(cls, text: str) -> Sha256Hex:
        digest = text.lower()
        if not _SHA256.fullmatch(digest):
            raise ValueError("not a sha256 hex digest")
        return cls(digest)


class ByteSize(int):
    """An amount of memory: "2gb", "512mb", "64kb" (binary multiples: 1kb = 1024 bytes, as
    Redis reads "1kb"), or a TOML integer of bytes. 0 means no bound."""

    @classmethod
    def parse(cls, text: str) -> ByteSize:
        m = _BYTES.fullmatch(text.strip().lower())
        if not m:
            raise ValueError(f"{text!r} is not an amount of memory (examples: 2gb, 512mb, 0)")
        return cls(int(m.group(1)) * _BYTE_UNITS[m.group(2)])


_TEXT_TYPES: Final = (
    Seconds,
    PositiveSeconds,
    MaxDuration,
    MonthDay,
    TimeZoneName,
    Sha256Hex,
    ByteSize,
)
_TOML_NAMES: Final = {bool: "bool", int: "int", float: "float", list: "array", dict: "object"}


def decode_value(kind: type, obj: Any) -> Any:
    """msgspec's `dec_hook` for the types above: each is written as a string (a ByteSize
    may also be an integer of bytes)."""
    if kind is ByteSize and isinstance(obj, int) and not isinstance(obj, bool):
        if obj < 0:
            raise ValueError(f"{obj}: an amount of memory is not negative")
        return ByteSize(obj)
    if kind in _TEXT_TYPES:
        if not isinstance(obj, str):
            got = _TOML_NAMES.get(type(obj), type(obj).__name__)
            raise TypeError(f"Expected `str`, got `{got}`")
        return kind.parse(obj)
    raise NotImplementedError(kind)
