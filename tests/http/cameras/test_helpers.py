"""The shared helpers on their own: confidence and country normalisation, local time, event
ids, safe XML (the [cameras.ID] configuration: tests/config/test_cameras.py)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from enforcement.http import errors
from enforcement.http.cameras import clock, ids, safexml, values
from enforcement.http.cameras.body import Malformed

ROME = ZoneInfo("Europe/Rome")


@pytest.mark.parametrize(
    ("value", "scale", "expected"),
    [
        (0.92, None, 0.92),
        (92, None, 0.92),
        ("92", None, 0.92),
        ("0.92", None, 0.92),
        ("92%", None, 0.92),
        ("0,92", None, 0.92),
        (1, None, 1.0),
        (1, 100, 0.01),
        (100, 100, 1.0),
        (0, 1, 0.0),
        (None, None, None),
        ("-", None, None),
        ("", 100, None),
        ("N/A", None, None),
    ],
)
def test_confidence(value: values.Scalar, scale: float | None, expected: float | None) -> None:
    got = values.confidence(value, "confidence", scale)
    assert got == pytest.approx(expected) if expected is not None else got is None


@pytest.mark.parametrize("value", ["high", -1, 101, 1.5e9, True, float("nan")])
def test_confidence_refused(value: values.Scalar) -> None:
    scale = 1 if value == 1.5e9 else None
    with pytest.raises(errors.Invalid) as exc:
        values.confidence(value, "ANPR.confidenceLevel", scale)
    assert exc.value.field == "ANPR.confidenceLevel"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ITA", "ITA"),
        ("it", "IT"),
        ("us-ca", "US"),
        ("Italy", "IT"),
        ("Poland", "PL"),
        ("I", "I"),
        ("5", None),
        ("0", None),
        ("unknown", None),
        ("-", None),
        ("浙", None),
        ("Atlantis", None),
        (None, None),
    ],
)
def test_country(value: str | None, expected: str | None) -> None:
    assert values.country(value) == expected


def test_local_time_and_dst() -> None:
    now = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC).timestamp()
    summer = clock.parse("2026-07-01 10:00:00", ROME, now, "time")
    assert summer == dt.datetime(2026, 7, 1, 8, tzinfo=dt.UTC).timestamp()
    assert clock.parse("2026-07-01T10:00:00+02:00", ROME, now, "t") == summer
    assert clock.parse("20260701 100000000", ROME, now, "datetime") == summer  # Axis compact
    assert clock.parse("20260701 080000000Z", ROME, now, "datetime") == summer
    assert clock.parse("20260701 100000000+0200", ROME, now, "datetime") == summer
    assert clock.parse("2026/07/01 10:00:00", ROME, now, "time") == summer
    assert clock.parse("2026-07-01T01:00:00-7:00", ROME, now, "t") == summer  # old Hikvision
    assert clock.parse("2026-07-01 08:00:00.000", clock.UTC_ZONE, now, "t") == summer
    # 25 October 2026, 02:30 happens twice in Rome (CEST, then CET). A camera posting at
    # 02:31 CET (second pass) means the later instant; at 02:31 CEST, the earlier one.
    naive = dt.datetime(2026, 10, 25, 2, 30)
    second_pass = dt.datetime(2026, 10, 25, 1, 31, tzinfo=dt.UTC).timestamp()
    first_pass = dt.datetime(2026, 10, 25, 0, 31, tzinfo=dt.UTC).timestamp()
    assert clock.aware(naive, ROME, second_pass) == dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)
    assert clock.aware(naive, ROME, first_pass) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC)
    for bad in ("yesterday", "2026-13-01 10:00:00", "19991231 235959000"):
        with pytest.raises(errors.Invalid) as exc:
            clock.parse(bad, ROME, now, "SnapInfo.SnapTime")
        assert exc.value.field == "SnapInfo.SnapTime"


def test_epochs() -> None:
    t = dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC)
    for value in (t.timestamp(), t.timestamp() * 1000, t.timestamp() * 1_000_000):
        assert clock.from_epoch(value, "epoch_start") == t.timestamp()
    assert clock.instant(155131902113266) is None  # Axis frame_timestamp: uptime in ns
    with pytest.raises(errors.Invalid):
        clock.from_epoch(42, "epoch_time")


def test_event_ids() -> None:
    t = dt.datetime(2026, 11, 22, 9, 0, 10, tzinfo=dt.UTC).timestamp()
    a = ids.synthetic("cam", "AB123CD", t)
    assert a == ids.synthetic("cam", "AB123CD", t + 40)  # same minute window
    assert a != ids.synthetic("cam", "AB123CD", t + 60)
    assert a != ids.synthetic("cam2", "AB123CD", t) != ids.synthetic("cam", "AB123CE", t)
    assert "AB123CD" not in a and len(a) <= ids.MAX_ID
    # no-reads: two unreadable cars a second apart are two transits
    assert ids.synthetic("cam", "", t) != ids.synthetic("cam", "", t + 1)
    assert ids.vendor("x" * 200).startswith("h-") and ids.vendor("car-7") == "car-7"


def test_safe_xml() -> None:
    root = safexml.parse(b'<a xmlns="urn:x"><b><c>1</c></b><c>2</c><d> t </d></a>')
    assert safexml.leaves(root) == {"c": "1", "d": "t"}
    for bad in (b"<a><b></a>", b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', b"<!DOCTYPE a><a/>"):
        with pytest.raises(Malformed):
            safexml.parse(bad)
