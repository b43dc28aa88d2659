"""Local time across DST changes, and the holiday calendar."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcement.core.localtime import (
    HolidayCalendar,
    LocalClock,
    day_number,
    easter_sunday,
    italian_holidays,
)

from ..support.common import at

ROME = ZoneInfo("Europe/Rome")
CLOCK = LocalClock("Europe/Rome")


@pytest.mark.parametrize(
    ("instant", "weekday", "hh", "mm"),
    [
        # Spring forward, Sunday 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC).
        ("2026-03-29T00:59:59+00:00", 6, 1, 59),
        ("2026-03-29T01:00:00+00:00", 6, 3, 0),
        # Fall back, Sunday 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC).
        ("2026-10-25T00:59:59+00:00", 6, 2, 59),
        ("2026-10-25T01:00:00+00:00", 6, 2, 0),
        ("2026-10-25T02:00:00+00:00", 6, 3, 0),
        # Monday after, and an ordinary winter and summer instant.
        ("2026-10-26T06:30:00+00:00", 0, 7, 30),
        ("2026-01-15T23:30:00+00:00", 4, 0, 30),  # Friday 00:30 local, Thursday in UTC
        ("2026-07-01T22:00:00+00:00", 3, 0, 0),
    ],
)
def test_minute_of_week_across_dst(instant: str, weekday: int, hh: int, mm: int) -> None:
    _, minute = CLOCK.day_and_minute_of_week(at(instant))
    assert minute == weekday * 1440 + hh * 60 + mm


@settings(max_examples=500)
@given(st.integers(min_value=0, max_value=4_102_444_800))  # 1970 .. 2100
def test_clock_matches_zoneinfo(ts: int) -> None:
    local = dt.datetime.fromtimestamp(ts, ROME)
    day, minute = CLOCK.day_and_minute_of_week(ts)
    assert day == day_number(local.date())
    assert minute == local.weekday() * 1440 + local.hour * 60 + local.minute
    assert CLOCK.offset(ts) == int(local.utcoffset().total_seconds())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("year", "easter"),
    [
        (2024, "2024-03-31"),
        (2025, "2025-04-20"),
        (2026, "2026-04-05"),
        (2027, "2027-03-28"),
        (2038, "2038-04-25"),
    ],
)
def test_easter(year: int, easter: str) -> None:
    assert easter_sunday(year) == dt.date.fromisoformat(easter)


def test_italian_holidays_2026() -> None:
    days = italian_holidays(2026, (6, 13))
    for d in [
        "2026-01-01",
        "2026-01-06",
        "2026-04-05",
        "2026-04-06",
        "2026-04-25",
        "2026-05-01",
        "2026-06-02",
        "2026-06-13",
        "2026-08-15",
        "2026-11-01",
        "2026-12-08",
        "2026-12-25",
        "2026-12-26",
    ]:
        assert dt.date.fromisoformat(d) in days, d
    assert dt.date(2026, 4, 7) not in days
    assert dt.date(2026, 11, 23) not in days


def test_calendar_patron_and_extra() -> None:
    cal = HolidayCalendar((6, 13), [dt.date(2026, 7, 7)])
    assert cal.is_holiday(day_number(dt.date(2026, 6, 13)))
    assert cal.is_holiday(day_number(dt.date(2026, 7, 7)))
    assert not cal.is_holiday(day_number(dt.date(2027, 7, 7)))
    assert not cal.is_holiday(day_number(dt.date(2026, 6, 14)))
    assert not HolidayCalendar(None).is_holiday(day_number(dt.date(2026, 6, 13)))
