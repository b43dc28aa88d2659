"""Camera times -> epoch seconds, against the plain model: datetime's own arithmetic.

`clock.parse` computes seconds from the wall time and a per-hour offset instead of building
an aware datetime (which costs more than the rest of a post). The seconds must be the very
float `timestamp()` gives: transit ids and dedup keys are derived from it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcement.http import errors
from enforcement.http.cameras import clock

ZONES = [
    ZoneInfo(z)
    for z in (
        "Europe/Rome",
        "UTC",
        "America/Sao_Paulo",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/St_Johns",
    )
]
NOW = dt.datetime(2099, 1, 1, tzinfo=dt.UTC).timestamp()  # every instant is in the past


def model(text: str, tz: ZoneInfo, now: float) -> float:
    """What the adapters did before: an aware datetime, then its timestamp()."""
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = clock.aware(value, tz, now)
    return value.timestamp()


walls = st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2099, 12, 30))


@settings(max_examples=400, deadline=None)
@given(
    wall=walls,
    tz=st.sampled_from(ZONES),
    sep=st.sampled_from(["T", " "]),
    digits=st.sampled_from([0, 3, 6]),
)
def test_local_times_match_the_model(
    wall: dt.datetime, tz: ZoneInfo, sep: str, digits: int
) -> None:
    text = wall.isoformat(
        sep, "seconds" if digits == 0 else "milliseconds" if digits == 3 else "microseconds"
    )
    assert clock.parse(text, tz, NOW, "t") == model(text, tz, NOW)


@settings(max_examples=300, deadline=None)
@given(wall=walls, minutes=st.integers(-14 * 60, 14 * 60), z=st.booleans())
def test_times_with_an_offset_match_the_model(wall: dt.datetime, minutes: int, z: bool) -> None:
    offset = dt.timezone(dt.timedelta(minutes=0 if z else minutes))
    text = wall.replace(tzinfo=offset).isoformat()
    if z:
        text = text.replace("+00:00", "Z")
    assert clock.parse(text, ZONES[0], NOW, "t") == model(text, ZONES[0], NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # DST days in Rome: 29 March 2026 02:00-03:00 does not exist; 25 October 02:00-03:00
        # happens twice (the later instant: posted after both passes).
        ("2026-03-29 01:59:59.999", "2026-03-29T00:59:59.999+00:00"),
        ("2026-03-29 03:00:00", "2026-03-29T01:00:00+00:00"),
        ("2026-03-29 02:30:00", "2026-03-29T01:30:00+00:00"),  # in the gap: the first offset
        ("2026-10-25 02:30:00", "2026-10-25T01:30:00+00:00"),
        ("2026-10-25 03:00:00", "2026-10-25T02:00:00+00:00"),
        ("2026-10-25 01:59:59", "2026-10-24T23:59:59+00:00"),
        # hour, day and year ends
        ("2026-12-31 23:59:59.999999", "2026-12-31T22:59:59.999999+00:00"),
        ("2027-01-01 00:00:00", "2026-12-31T23:00:00+00:00"),
        ("2028-02-29 12:00:00", "2028-02-29T11:00:00+00:00"),
        # forms fromisoformat refuses, read leniently
        (" 2026-07-01 10:00:00 ", "2026-07-01T08:00:00+00:00"),
        ("2026/07/01 10:00:00", "2026-07-01T08:00:00+00:00"),
        ("2026-07-01T01:00:00-7:00", "2026-07-01T08:00:00+00:00"),
        ("20260701 100000390", "2026-07-01T08:00:00.390+00:00"),
        ("20260701 080000000Z", "2026-07-01T08:00:00+00:00"),
        # UTC (`Z`, +00:00) at the ends of the accepted range
        ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00+00:00"),
        ("2099-12-31T23:59:59.999999+00:00", "2099-12-31T23:59:59.999999+00:00"),
    ],
)
def test_rome_table(text: str, expected: str) -> None:
    rome = ZoneInfo("Europe/Rome")
    assert clock.parse(text, rome, NOW, "t") == dt.datetime.fromisoformat(expected).timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "1999-12-31 23:59:59",
        "2100-01-01T01:00:00+00:00",
        "1999-12-31T23:59:59.999999Z",
        "2100-01-01T00:00:00Z",
        "2026-02-30 10:00:00",
        "10:00",
        "",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(errors.Invalid) as exc:
        clock.parse(text, ZONES[0], NOW, "SnapTime")
    assert exc.value.field == "SnapTime"


@pytest.mark.parametrize(
    "value", [1795457019128, 1795457019, 1795457019.5, 1795457019128456, 1795457019.0001234]
)
def test_epochs_are_the_microsecond_instant(value: float) -> None:
    seconds = clock.epoch_seconds(value)
    assert seconds is not None
    want = dt.datetime.fromtimestamp(seconds, dt.UTC).timestamp()
    assert clock.from_epoch(value, "epoch_start") == want
