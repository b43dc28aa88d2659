"""Rules from configuration: gate schedules, permit windows, holidays, suspensions, zones,
durations (configuration errors: tests/config/test_load.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcement.config.values import parse_duration
from enforcement.core.rules import Duration, Rules

from ..support.common import at
from ..support.core import load


@pytest.fixture
def rules(tmp_path: Path) -> Rules:
    return load(tmp_path)


@pytest.mark.parametrize(
    ("gate", "instant", "active"),
    [
        # Night zone Fri-Sat 23:00-03:00, crossing midnight (2026-11-20 is a Friday).
        ("NIGHT", "2026-11-20T22:59:59+01:00", False),
        ("NIGHT", "2026-11-20T23:00:00+01:00", True),
        ("NIGHT", "2026-11-21T02:59:59+01:00", True),
        ("NIGHT", "2026-11-21T03:00:00+01:00", False),
        ("NIGHT", "2026-11-22T02:00:00+01:00", True),  # Sunday 02:00, from Saturday's window
        ("NIGHT", "2026-11-23T02:00:00+01:00", False),  # Monday 02:00
        ("NIGHT", "2026-11-19T23:30:00+01:00", False),  # Thursday
        # Weekdays 07:30-19:30; interval ends; the DST-change Monday and Sunday.
        ("DAY", "2026-11-23T07:29:59+01:00", False),
        ("DAY", "2026-11-23T07:30:00+01:00", True),
        ("DAY", "2026-11-23T19:29:59+01:00", True),
        ("DAY", "2026-11-23T19:30:00+01:00", False),
        ("DAY", "2026-03-29T10:00:00+02:00", False),  # Sunday of spring-forward
        ("DAY", "2026-03-30T07:30:00+02:00", True),  # Monday after: 05:30 UTC
        ("DAY", "2026-03-30T07:29:00+02:00", False),
        ("DAY", "2026-10-26T07:30:00+01:00", True),  # Monday after fall-back: 06:30 UTC
        ("DAY", "2026-10-26T07:29:00+01:00", False),
        # Holidays: inactive all day (Christmas, a Friday; Easter Monday; the patron saint).
        ("DAY", "2026-12-25T10:00:00+01:00", False),
        ("DAY", "2026-04-06T10:00:00+02:00", False),
        ("DAY", "2027-06-14T10:00:00+02:00", True),  # the Monday after Sant'Antonio 2027
        ("DAY", "2026-06-15T10:00:00+02:00", True),
        # as_sunday: a holiday Monday follows Sunday's 10:00-12:00 window.
        ("SUNDAYLIKE", "2026-04-06T09:00:00+02:00", False),
        ("SUNDAYLIKE", "2026-04-06T11:00:00+02:00", True),
        ("SUNDAYLIKE", "2026-04-07T09:00:00+02:00", True),
        # Seasonal suspensions, one wrapping the new year.
        ("AUGUST", "2026-08-09T23:59:59+02:00", True),
        ("AUGUST", "2026-08-10T00:00:00+02:00", False),
        ("AUGUST", "2026-08-24T23:59:59+02:00", False),
        ("AUGUST", "2026-08-25T00:00:00+02:00", True),
        ("XMAS", "2026-12-19T12:00:00+01:00", True),
        ("XMAS", "2026-12-31T12:00:00+01:00", False),
        ("XMAS", "2027-01-06T12:00:00+01:00", False),
        ("XMAS", "2027-01-07T00:00:00+01:00", True),
    ],
)
def test_gate_active(rules: Rules, gate: str, instant: str, active: bool) -> None:
    assert rules.gate_active(rules.gates[gate], at(instant)) is active


@pytest.mark.parametrize(
    ("type_", "instant", "inside"),
    [
        ("LOAD", "2026-11-23T03:59:59+01:00", False),
        ("LOAD", "2026-11-23T04:00:00+01:00", True),
        ("LOAD", "2026-11-23T10:59:59+01:00", True),
        ("LOAD", "2026-11-23T11:00:00+01:00", False),
        ("LOAD", "2026-11-23T15:00:00+01:00", True),
        ("LOAD", "2026-11-23T16:00:00+01:00", False),
        # DST days: local time, not UTC.
        ("LOAD", "2026-03-29T10:59:00+02:00", True),
        ("LOAD", "2026-03-29T11:00:00+02:00", False),
        ("LOAD", "2026-03-29T04:00:00+02:00", True),  # 02:00 UTC, already summer time
        ("LOAD", "2026-10-25T03:59:00+01:00", False),  # 02:59 UTC, winter time again
        ("LOAD", "2026-10-25T04:00:00+01:00", True),
        ("LOAD", "2026-10-25T15:30:00+01:00", True),
        # Weekdays only, holidays inactive.
        ("WEEKDAY", "2026-11-23T12:00:00+01:00", True),
        ("WEEKDAY", "2026-11-22T12:00:00+01:00", False),
        ("WEEKDAY", "2026-12-08T12:00:00+01:00", False),  # Immacolata, a Tuesday
        ("ONLINE", "2026-12-08T12:00:00+01:00", True),  # no windows: always
    ],
)
def test_permit_windows(rules: Rules, type_: str, instant: str, inside: bool) -> None:
    assert rules.in_window(rules.types[type_], at(instant)) is inside


def test_zone_hierarchy(rules: Rules) -> None:
    assert rules.covered_by["B"] == {"A", "B"}
    assert rules.covered_by["A"] == {"A"}


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        (
            "2h",
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T04:30:00+02:00",
        ),  # across DST: 2 real hours
        ("6mo", "2026-08-31T10:00:00+02:00", "2027-02-28T10:00:00+01:00"),  # day clamped
        ("6mo", "2027-08-31T10:00:00+02:00", "2028-02-29T10:00:00+01:00"),  # leap year
        ("1y", "2026-11-22T10:00:00+01:00", "2027-11-22T10:00:00+01:00"),
        ("1d12h", "2026-11-22T10:00:00+01:00", "2026-11-23T22:00:00+01:00"),
    ],
)
def test_duration_end(rules: Rules, text: str, start: str, end: str) -> None:
    d = parse_duration(text)
    assert d is not None
    assert d.end_from(at(start), rules.clock) == at(end)


@given(st.integers(0, 1200), st.integers(0, 10**9))
def test_a_duration_reads_back_as_described(months: int, seconds: int) -> None:
    """Messages name durations in the units a configuration uses ("2h", not "7200s")."""
    d = Duration(months, seconds)
    assert parse_duration(d.describe()) == d


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        (Duration(seconds=7200), "2h"),
        (Duration(months=6), "6mo"),
        (Duration(months=36), "3y"),
        (Duration(months=13), "13mo"),
        (Duration(seconds=129600), "1d12h"),
        (Duration(seconds=5400), "1h30m"),
        (Duration(), "0s"),
    ],
)
def test_durations_are_described_in_configuration_units(duration: Duration, text: str) -> None:
    assert duration.describe() == text


def test_parse_duration() -> None:
    assert parse_duration("unlimited") is None
    assert parse_duration("3y") == Duration(months=36)
    assert parse_duration("90m") == Duration(seconds=5400)
    for bad in ("", "2 weeks", "h2", "5x", "2h3"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError, match="months"):
        parse_duration("1mo", allow_months=False)
