"""Local civil time (Europe/Rome by default) and the city's holiday calendar, for the hot path.

`LocalClock` turns epoch seconds into local minute-of-week and local day number with one
bisect over precomputed UTC-offset transitions, so rule checks never build datetime objects
and stay exact across both daylight-saving changes. Day numbers count local days since
1970-01-01 (a Thursday). Minute-of-week counts from Monday 00:00.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Iterable
from typing import Final
from zoneinfo import ZoneInfo

MINUTES_PER_WEEK: Final = 7 * 1440
_EPOCH_WEEKDAY: Final = 3  # 1970-01-01 was a Thursday (Monday = 0)
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_FIRST_YEAR: Final = 1970
_LAST_YEAR: Final = 2200  # uint32 epoch seconds run out in 2106; margin beyond


class LocalClock:
    """Epoch seconds -> local time in one IANA zone, via a table of offset transitions."""

    def __init__(self, tz_name: str = "Europe/Rome") -> None:
        self.tz_name = tz_name
        self.tz = ZoneInfo(tz_name)
        self._starts: list[int] = []  # UTC instants at which an offset begins
        self._offsets: list[int] = []  # offset in seconds from that instant on
        self._build()

    def _build(self) -> None:
        # Walk day by day and refine each change to the second: zones change offset at most
        # a few times a year, never twice within one day.
        utc = dt.UTC
        t = int(dt.datetime(_FIRST_YEAR, 1, 1, tzinfo=utc).timestamp())
        end = int(dt.datetime(2107, 1, 1, tzinfo=utc).timestamp())
        step = 86400
        prev = self._offset_at(t)
        self._starts.append(-(2**62))
        self._offsets.append(prev)
        while t < end:
            nxt = t + step
            off = self._offset_at(nxt)
            if off != prev:
                lo, hi = t, nxt  # offset(lo) == prev, offset(hi) == off
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._offset_at(mid) == prev:
                        lo = mid
                    else:
                        hi = mid
                self._starts.append(hi)
                self._offsets.append(off)
                prev = off
            t = nxt

    def _offset_at(self, ts: int) -> int:
        delta = dt.datetime.fromtimestamp(ts, self.tz).utcoffset()
        assert delta is not None
        return int(delta.total_seconds())

    def transitions(self) -> tuple[list[int], list[int]]:
        """(UTC instants at which an offset begins, the offsets in seconds), ascending."""
        return list(self._starts), list(self._offsets)

    def offset(self, ts: int) -> int:
        """UTC offset in seconds at epoch second `ts`."""
        return self._offsets[bisect.bisect_right(self._starts, ts) - 1]

    def local_seconds(self, ts: int) -> int:
        """Local wall-clock seconds since 1970-01-01 00:00 local."""
        return ts + self._offsets[bisect.bisect_right(self._starts, ts) - 1]

    def day_and_minute_of_week(self, ts: int) -> tuple[int, int]:
        """(local day number, local minute of week) at epoch second `ts`."""
        local = ts + self._offsets[bisect.bisect_right(self._starts, ts) - 1]
        day = local // 86400
        return day, ((day + _EPOCH_WEEKDAY) % 7) * 1440 + (local % 86400) // 60

    def to_datetime(self, ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(ts, self.tz)

    def from_local(self, naive: dt.datetime) -> int:
        """Epoch seconds of a naive local wall time (the earlier instant if ambiguous)."""
        return int(naive.replace(tzinfo=self.tz).timestamp())


def day_number(d: dt.date) -> int:
    return d.toordinal() - _EPOCH_ORDINAL


def day_date(day: int) -> dt.date:
    return dt.date.fromordinal(day + _EPOCH_ORDINAL)


def easter_sunday(year: int) -> dt.date:
    """Gregorian Easter (anonymous Gregorian algorithm, Meeus/Jones/Butcher)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


# Italian national public holidays with fixed dates (month, day).
ITALIAN_FIXED_HOLIDAYS: Final = (
    (1, 1),  # Capodanno
    (1, 6),  # Epifania
    (4, 25),  # Festa della Liberazione
    (5, 1),  # Festa del Lavoro
    (6, 2),  # Festa della Repubblica
    (8, 15),  # Ferragosto
    (11, 1),  # Ognissanti
    (12, 8),  # Immacolata Concezione
    (12, 25),  # Natale
    (12, 26),  # Santo Stefano
)
# San Francesco d'Assisi, national holiday again from 2026 (legge 151/2025).
SAN_FRANCESCO_FROM_YEAR: Final = 2026


def italian_holidays(
    year: int, patron_saint: tuple[int, int] | None, extra: Iterable[dt.date] = ()
) -> set[dt.date]:
    """Italian national holidays of `year`, Easter Monday, the patron saint and extra dates."""
    days = {dt.date(year, m, d) for m, d in ITALIAN_FIXED_HOLIDAYS}
    if year >= SAN_FRANCESCO_FROM_YEAR:
        days.add(dt.date(year, 10, 4))
    easter = easter_sunday(year)
    days.add(easter)
    days.add(easter + dt.timedelta(days=1))  # Lunedì dell'Angelo
    if patron_saint is not None:
        days.add(dt.date(year, *patron_saint))
    days.update(d for d in extra if d.year == year)
    return days


class HolidayCalendar:
    """Local day number -> is it a public holiday; one bytearray lookup per check."""

    def __init__(
        self, patron_saint: tuple[int, int] | None = None, extra: Iterable[dt.date] = ()
    ) -> None:
        extra = list(extra)
        last = day_number(dt.date(_LAST_YEAR, 12, 31))
        self._flags = bytearray(last + 1)
        for year in range(_FIRST_YEAR, _LAST_YEAR + 1):
            for d in italian_holidays(year, patron_saint, extra):
                self._flags[day_number(d)] = 1

    @property
    def flags(self) -> bytes:
        """One byte per local day number from 1970-01-01: 1 on a holiday."""
        return bytes(self._flags)

    def is_holiday(self, day: int) -> bool:
        return 0 <= day < len(self._flags) and self._flags[day] == 1
