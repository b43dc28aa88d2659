"""Camera timestamps -> instants (epoch seconds).

Many cameras send local wall time without an offset (Milesight, Dahua, Axis and Hikvision
firmware that lack one): it is read in the camera's configured zone (`[cameras.ID] timezone`,
default the city's). The hour repeated when daylight saving ends is ambiguous; cameras post
as they read, so the later of the two instants is taken unless it lies in the future, which
gets every real-time post of that night right (a late re-upload from that hour may be an hour
off; its record keeps the raw time). Epoch numbers come in seconds, milliseconds or
microseconds depending on the vendor and are told apart by size.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Final
from zoneinfo import ZoneInfo

from .. import errors

UTC_ZONE: Final = ZoneInfo("UTC")  # for vendors whose times without an offset are UTC
SKEW_S: Final = 300  # "not in the future" allows this much camera clock drift
# Epoch instants are accepted from 2000 to 2100: anything else is a wrong unit or a wrong clock
# (a camera reset to 1970 still posts an instant in range and gets `too_old`).
_MIN_EPOCH: Final = 946_684_800
_MAX_EPOCH: Final = 4_102_444_800
# Axis License Plate Verifier: "20200624 131555390", optionally "+0200".
_COMPACT: Final = re.compile(
    r"(\d{4})(\d\d)(\d\d)[ T](\d\d)(\d\d)(\d\d)(\d{3})?\s*(?:([+-])(\d\d):?(\d\d)|Z)?"
)


_EPOCH_DAY: Final = dt.date(1970, 1, 1).toordinal()
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EAST: dict[dt.tzinfo, int] = {}  # fixed UTC offsets sent (timezone compares by offset) -> s
_FIXED: dict[dt.timedelta, dt.timezone] = {}  # a zone has a handful of offsets


def _fixed(offset: dt.timedelta) -> dt.timezone:
    tz = _FIXED.get(offset)
    if tz is None:
        tz = _FIXED[offset] = dt.timezone(offset)
    return tz


@functools.lru_cache(maxsize=4096)  # cameras post in real time: a few hours per zone
def _hour(tz: ZoneInfo, hour: int) -> int | None:
    """The epoch second at which local hour `hour` (hours since 0001-01-01) of `tz` begins,
    or None when a transition falls in that hour (a gap or a repeated span). Zone
    transitions fall on whole minutes and never two in one hour, so equal offsets for both
    folds at the hour's first and last microsecond mean one offset throughout."""
    start = dt.datetime.fromordinal(hour // 24) + dt.timedelta(hours=hour % 24)
    end = start + dt.timedelta(hours=1, microseconds=-1)
    offsets = {tz.utcoffset(t.replace(fold=f)) for t in (start, end) for f in (0, 1)}
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    if offset is None:
        return None
    return (hour - _EPOCH_DAY * 24) * 3600 - offset.days * 86400 - offset.seconds


def aware(naive: dt.datetime, tz: ZoneInfo, now: float) -> dt.datetime:
    """The instant of local wall time `naive` in `tz` (see the module docstring for DST), with
    a fixed offset (a fold=1 zone time compares unequal to every other zone: PEP 495)."""
    off0 = tz.utcoffset(naive.replace(fold=0))
    off1 = tz.utcoffset(naive.replace(fold=1))
    assert off0 is not None and off1 is not None
    # off0 > off1 is the repeated hour (summer offset first): take its later instant once the
    # second pass has begun. Otherwise the first (unambiguous, or in a spring-forward gap:
    # a wrong camera clock anyway).
    if off0 > off1 and (naive - off1).replace(tzinfo=dt.UTC).timestamp() <= now + SKEW_S:
        return naive.replace(tzinfo=_fixed(off1))
    return naive.replace(tzinfo=_fixed(off0))


def parse(text: str, tz: ZoneInfo, now: float, field: str) -> float:
    """Epoch seconds of an ISO 8601 date-time (`T` or space, fraction, offset or `Z`
    optional) or the compact Axis form; without an offset it is local time in `tz`. 422
    naming `field` otherwise, or outside 2000-2100.

    Seconds, not a datetime: the transit needs no more, and building an aware datetime and
    asking for its timestamp() cost more than all the rest (every post of most vendors)."""
    try:
        value = dt.datetime.fromisoformat(text)  # the usual form, as sent
    except ValueError:
        value = _lenient(text, field)
    zone = value.tzinfo
    if zone is dt.UTC:  # `Z` or +00:00 (Plate Recognizer's): the same float, all in C
        seconds = (value - _EPOCH).total_seconds()
        if _MIN_EPOCH <= seconds < _MAX_EPOCH:
            return seconds
        return _in_range(seconds, text, field)  # raises
    hour = value.toordinal() * 24 + value.hour
    if zone is None:  # local time
        start = _hour(tz, hour)
        if start is None:  # a daylight-saving change in this hour
            return _in_range(aware(value, tz, now).timestamp(), text, field)
    else:
        east = _EAST.get(zone)  # a fixed offset: a dict lookup, not a utcoffset() call
        if east is None:
            offset = value.utcoffset()
            assert offset is not None
            east = offset.days * 86400 + offset.seconds
            if type(zone) is dt.timezone and len(_EAST) < 256:
                _EAST[zone] = east
        start = (hour - _EPOCH_DAY * 24) * 3600 - east
    # Microseconds, exact in a float below 2^53 (the year 2255), divided once: the very
    # float timestamp() gives for the instant (transit ids and dedup keys derive from it).
    seconds = ((start + value.minute * 60 + value.second) * 1e6 + value.microsecond) / 1e6
    if _MIN_EPOCH <= seconds < _MAX_EPOCH:
        return seconds
    return _in_range(seconds, text, field)  # raises


def _in_range(seconds: float, text: str, field: str) -> float:
    if not _MIN_EPOCH <= seconds < _MAX_EPOCH:
        raise errors.Invalid(f"{text[:40]!r} is outside 2000-2100", field)
    return seconds


def _lenient(text: str, field: str) -> dt.datetime:
    """The forms fromisoformat refuses: spaces around, `2026/11/22`, a `-8:00` offset (older
    Hikvision firmware), the compact Axis form."""
    text = text.strip()
    if "/" in text[:10]:  # 2026/11/22 10:00:00, as some firmware write the date
        text = text[:10].replace("/", "-") + text[10:]
    if text[-5:-4] in ("+", "-") and text[-3:-2] == ":":  # -8:00
        text = f"{text[:-4]}0{text[-4:]}"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    m = _COMPACT.fullmatch(text)
    if m is None:
        raise errors.Invalid(f"{text[:40]!r} is not a date-time", field)
    y, mo, d, h, mi, s, ms, sign, oh, om = m.groups()
    try:
        value = dt.datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int(ms or 0) * 1000)
    except ValueError:
        raise errors.Invalid(f"{text[:40]!r} is not a date-time", field) from None
    if sign is not None:
        offset = dt.timedelta(hours=int(oh), minutes=int(om))
        value = value.replace(tzinfo=_fixed(offset if sign == "+" else -offset))
    elif text.endswith("Z"):
        value = value.replace(tzinfo=dt.UTC)
    return value


def epoch_seconds(value: float) -> float | None:
    """Epoch seconds from seconds, milliseconds or microseconds, or None if out of range."""
    seconds = float(value)
    if seconds >= _MAX_EPOCH:  # three steps at most: seconds, ms, us, ns
        seconds /= 1000
        if seconds >= _MAX_EPOCH:
            seconds /= 1000
            if seconds >= _MAX_EPOCH:
                seconds /= 1000
    return seconds if _MIN_EPOCH <= seconds < _MAX_EPOCH else None


MIN_MS: Final = _MIN_EPOCH * 1000  # epoch milliseconds from 2000 to 2100
MAX_MS: Final = _MAX_EPOCH * 1000


def instant(value: float) -> float | None:
    """Epoch seconds from a number in seconds, milliseconds or microseconds, told apart by
    size, as the microsecond instant it names; None if it names none from 2000 to 2100."""
    if type(value) is int and MIN_MS <= value < MAX_MS:  # milliseconds (Rekor, Axis): exact
        return value / 1000
    seconds = epoch_seconds(value)
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).timestamp()  # to the microsecond


def from_epoch(value: float, field: str) -> float:
    """`instant(value)`, or 422 naming `field`."""
    seconds = instant(value)
    if seconds is None:
        raise errors.Invalid(f"{value!r} is not an epoch instant between 2000 and 2100", field)
    return seconds
