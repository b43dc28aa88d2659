"""Rules from configuration: gate schedules, permit windows, holidays, suspensions, zones,
durations, and configuration errors naming file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from enforcement.config.load import ConfigError, load_config
from enforcement.config.values import parse_duration
from enforcement.core.rules import Duration, Rules

from ..conftest import DEMO_CONFIG, at

BASE = """
[city]
patron_saint = "06-13"

[zones.A]
grace = "72h"
covers = ["B"]

[zones.B]
grace = "24h"

[gates.DAY]
zone = "A"
schedule = [{ days = "mon-fri", from = "07:30", to = "19:30" }]
holidays = "inactive"

[gates.NIGHT]
zone = "A"
schedule = [{ days = "fri-sat", from = "23:00", to = "03:00" }]

[gates.SUNDAYLIKE]
zone = "A"
schedule = [{ days = "mon-sat", from = "08:00", to = "20:00" }, { days = "sun", from = "10:00", to = "12:00" }]
holidays = "as_sunday"

[gates.AUGUST]
zone = "B"
suspended = [{ from = "08-10", to = "08-24" }]

[gates.XMAS]
zone = "B"
suspended = [{ from = "12-20", to = "01-06" }]

[types.LOAD]
zones = ["A"]
windows = [{ days = "mon-sun", from = "04:00", to = "11:00" }, { days = "mon-sun", from = "15:00", to = "16:00" }]
max_duration = "1y"

[types.WEEKDAY]
zones = ["B"]
windows = [{ days = "mon-fri", from = "00:00", to = "24:00" }]
holidays = "inactive"

[types.ONLINE]
zones = ["A"]
max_duration = "2h"

[types.TEMP]
zones = ["A"]
max_duration = "6mo"
"""


def load(tmp_path: Path, text: str = BASE) -> Rules:
    path = tmp_path / "city.toml"
    path.write_text(text)
    return load_config(path, {"VARCO_DATA_DIR": str(tmp_path)})[1]


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


def test_parse_duration() -> None:
    assert parse_duration("unlimited") is None
    assert parse_duration("3y") == Duration(months=36)
    assert parse_duration("90m") == Duration(seconds=5400)
    for bad in ("", "2 weeks", "h2", "5x", "2h3"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    with pytest.raises(ValueError, match="months"):
        parse_duration("1mo", allow_months=False)


def test_example_configs_load() -> None:
    _, rules = load_config(DEMO_CONFIG)
    assert {"4", "ONLINE", "TEMP", "CUDE"} <= set(rules.types)
    assert rules.types["CUDE"].cude
    _, padova = load_config(DEMO_CONFIG.parent / "padova.toml")
    assert padova.types["4"].window_text == ("mon,tue,wed,thu,fri,sat,sun 04:00-11:00",
                                             "mon,tue,wed,thu,fri,sat,sun 15:00-16:00")  # fmt: skip


@pytest.mark.parametrize(
    ("change", "key", "reason"),
    [
        (('zone = "A"\nschedule = [{ days = "mon-fri"', 'zone = "Z"\nschedule = [{ days = "mon-fri"'),
         "gates.DAY.zone", "unknown zone 'Z'"),
        (("[gates.AUGUST]\nzone", "[gates.AUGUST]\nzonne = 1\nzone"), "gates.AUGUST",
         "unknown field `zonne`"),
        (('from = "07:30"', 'from = "25:00"'), "gates.DAY.schedule[0]", "not a time of day"),
        (('days = "mon-fri", from = "07:30"', 'days = "mon-fry", from = "07:30"'),
         "gates.DAY.schedule[0]", "days are mon"),
        (('from = "07:30", to = "19:30"', 'from = "10:00", to = "10:00"'), "gates.DAY.schedule[0]",
         "empty"),
        (('max_duration = "2h"', 'max_duration = "2 hours"'), "types.ONLINE.max_duration",
         "not a duration"),
        (('grace = "24h"', 'grace = "1mo"'), "zones.B.grace", "months"),
        (('covers = ["B"]', 'covers = ["C"]'), "zones.A.covers[0]", "unknown zone 'C'"),
        (('patron_saint = "06-13"', 'patron_saint = "13-06"'), "city.patron_saint", "MM-DD"),
        (('patron_saint = "06-13"', 'patron_saint = "06-13"\ntimezone = "Europe/Roma"'),
         "city.timezone", "unknown time zone"),
        (('[zones.B]\ngrace = "24h"', '[zones.B]\ngrace = 24'), "zones.B.grace", "Expected `str`"),
        (('[types.ONLINE]\nzones = ["A"]', '[types.ONLINE]\nzones = []'), "types.ONLINE.zones",
         "at least one zone"),
    ],
)  # fmt: skip
def test_config_errors(tmp_path: Path, change: tuple[str, str], key: str, reason: str) -> None:
    assert change[0] in BASE
    with pytest.raises(ConfigError) as info:
        load(tmp_path, BASE.replace(change[0], change[1], 1))
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(tmp_path / "city.toml") in str(info.value)


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ('[[api_keys]]\nid = "x"\nrole = "camera"\n', "api_keys[0]", "exactly one of"),
        ('[[api_keys]]\nid = "x"\nrole = "mayor"\nkey = "k"\n', "api_keys[0].role", "Invalid enum value 'mayor'"),
        ('[[api_keys]]\nid = "x"\nrole = "camera"\nkey_sha256 = "abc"\n', "api_keys[0].key_sha256",
         "sha256"),
        ('[retention]\nallowed = "0"\n', "retention.allowed", "positive duration"),
        ('[retention]\nviolations = "15 months"\n', "retention.violations", "months"),
        ('[transit_log]\ndedup_window = "1mo"\n', "transit_log.dedup_window", "months"),
        ('[transit_log]\nwrite_timeout_ms = 0\n', "transit_log.write_timeout_ms", ">= 10"),
    ],
)  # fmt: skip
def test_api_key_errors(tmp_path: Path, extra: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, BASE + extra)
    assert (info.value.key, reason in info.value.reason) == (key, True)


def test_not_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "[zones\n")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.toml")
