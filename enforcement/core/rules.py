"""Compiled city rules: weekly windows, gate schedules, permit types, zones, holidays.

Everything here is built once from the configuration and then only read. A weekly window is a
minute-of-week table (7 x 1440 entries, Monday 00:00 first) in local time, so checking a window
is one index into a bytes object; local time comes from `LocalClock`, exact across DST.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from .localtime import MINUTES_PER_WEEK, HolidayCalendar, LocalClock, day_date

DAY_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HolidayMode(StrEnum):
    """How a public holiday changes a schedule or a permit type's windows."""

    NORMAL = "normal"  # holidays are ordinary days
    INACTIVE = "inactive"  # gate off / permit windows closed the whole holiday
    AS_SUNDAY = "as_sunday"  # the holiday follows Sunday's windows


@dataclass(frozen=True, slots=True)
class Window:
    """Days on which a window starts, and local start/end in minutes of the day.

    `end_min <= start_min` means the window crosses midnight into the next day
    (23:00-03:00 on Friday covers Friday 23:00 to Saturday 03:00).
    """

    days: tuple[int, ...]
    start_min: int
    end_min: int


def compile_windows(windows: Iterable[Window]) -> bytes:
    """Minute-of-week table: byte m is 1 when minute m (Monday 00:00 = 0) is inside a window."""
    table = bytearray(MINUTES_PER_WEEK)
    for w in windows:
        length = (w.end_min - w.start_min) % 1440 or 1440
        for day in w.days:
            first = day * 1440 + w.start_min
            for m in range(first, first + length):
                table[m % MINUTES_PER_WEEK] = 1
    return bytes(table)


ALWAYS: Final = bytes([1]) * MINUTES_PER_WEEK


@dataclass(frozen=True, slots=True)
class Duration:
    """A maximum permit duration: calendar months plus seconds (either may be zero)."""

    months: int = 0
    seconds: int = 0

    def end_from(self, start_ts: int, clock: LocalClock) -> int:
        """Latest allowed end for a permit starting at `start_ts` (calendar-aware months)."""
        if not self.months:
            return start_ts + self.seconds
        local = clock.to_datetime(start_ts)
        month0 = local.month - 1 + self.months
        year, month = local.year + month0 // 12, month0 % 12 + 1
        # Clamp the day (31 Jan + 1 month = 28/29 Feb), as a city office would count it.
        last_day = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
        moved = local.replace(tzinfo=None, year=year, month=month, day=min(local.day, last_day))
        return clock.from_local(moved) + self.seconds

    def describe(self) -> str:
        """In the units a configuration writes it: "2h", "6mo", "3y", "1d12h"."""
        years, months = divmod(self.months, 12)
        parts = [f"{years}y"] if years and not months else [f"{self.months}mo"] if months else []
        rest = self.seconds
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
            n, rest = divmod(rest, size)
            if n:
                parts.append(f"{n}{unit}")
        return "".join(parts) or "0s"


@dataclass(frozen=True, slots=True)
class Zone:
    code: str
    name: str
    grace_s: int  # after-the-fact permits are accepted this long after a transit
    covers: tuple[str, ...]  # sub-zones a permit for this zone also covers (transitively)


@dataclass(frozen=True, slots=True)
class Suspension:
    """A yearly period (local dates, inclusive) in which a gate is off, e.g. August."""

    start: tuple[int, int]  # (month, day)
    end: tuple[int, int]

    def contains(self, month_day: tuple[int, int]) -> bool:
        if self.start <= self.end:
            return self.start <= month_day <= self.end
        return month_day >= self.start or month_day <= self.end  # wraps the new year


@dataclass(frozen=True, slots=True)
class Gate:
    code: str
    zone: str
    schedule: bytes  # minute-of-week table; ALWAYS when the gate has no schedule
    holidays: HolidayMode
    suspensions: tuple[Suspension, ...]
    name: str = ""

    @property
    def always_active(self) -> bool:
        return (
            self.schedule is ALWAYS and self.holidays is HolidayMode.NORMAL and not self.suspensions
        )


@dataclass(frozen=True, slots=True)
class PermitType:
    code: str
    name: str
    zones: tuple[str, ...]  # zones a permit of this type covers when the permit names none
    windows: bytes  # ALWAYS when the type has no time-slot restriction
    holidays: HolidayMode
    max_duration: Duration | None  # None: unlimited
    cude: bool  # disabled badge: only the primary plate may transit
    window_text: tuple[str, ...] = ()  # the windows as configured, for the police view

    @property
    def restricted(self) -> bool:
        return self.windows is not ALWAYS


class UnknownGate(Exception):
    """A transit names a gate the configuration does not have."""

    def __init__(self, gate: str, field: str) -> None:
        super().__init__(f"unknown gate {gate!r}")
        self.field = field  # where the request named it: "gate", "transits[3].gate"


@dataclass(slots=True)
class Rules:
    """The city's compiled rules; evaluation helpers take epoch seconds."""

    clock: LocalClock
    holidays: HolidayCalendar
    zones: Mapping[str, Zone]
    gates: Mapping[str, Gate]
    types: Mapping[str, PermitType]
    # zone code -> codes of the zones whose permits cover it (itself and its ancestors)
    covered_by: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.covered_by = _covered_by(self.zones)

    def _minute(self, ts: int, mode: HolidayMode) -> int | None:
        day, minute = self.clock.day_and_minute_of_week(ts)
        if mode is not HolidayMode.NORMAL and self.holidays.is_holiday(day):
            if mode is HolidayMode.INACTIVE:
                return None
            return 6 * 1440 + minute % 1440
        return minute

    def gate_active(self, gate: Gate, ts: int) -> bool:
        """Is the gate enforcing at `ts`? (schedule, holidays, seasonal suspensions)"""
        if gate.suspensions:
            day = self.clock.local_seconds(ts) // 86400
            d = day_date(day)
            if any(s.contains((d.month, d.day)) for s in gate.suspensions):
                return False
        if gate.schedule is ALWAYS and gate.holidays is HolidayMode.NORMAL:
            return True
        minute = self._minute(ts, gate.holidays)
        return minute is not None and gate.schedule[minute] == 1

    def in_window(self, ptype: PermitType, ts: int) -> bool:
        """Does a permit of this type allow transit at `ts` by its time slots?"""
        if ptype.windows is ALWAYS and ptype.holidays is HolidayMode.NORMAL:
            return True
        minute = self._minute(ts, ptype.holidays)
        return minute is not None and ptype.windows[minute] == 1


def _covered_by(zones: Mapping[str, Zone]) -> dict[str, frozenset[str]]:
    covers: dict[str, set[str]] = {}
    for code in zones:
        seen: set[str] = set()
        stack = [code]
        while stack:
            z = stack.pop()
            if z in seen:
                continue
            seen.add(z)
            stack.extend(zones[z].covers)
        covers[code] = seen
    return {z: frozenset(c for c in zones if z in covers[c]) for z in zones}


def format_window(w: Window) -> str:
    days = ",".join(DAY_NAMES[d] for d in w.days)
    start, end = divmod(w.start_min, 60), divmod(w.end_min, 60)
    return f"{days} {start[0]:02d}:{start[1]:02d}-{end[0]:02d}:{end[1]:02d}"


def zone_mask(codes: Sequence[str], order: Sequence[str]) -> int:
    """Bit mask of zone codes over an ordered zone list (bit i = order[i])."""
    pos = {z: i for i, z in enumerate(order)}
    mask = 0
    for c in codes:
        mask |= 1 << pos[c]
    return mask
