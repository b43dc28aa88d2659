"""The native Judge (_judge.c) against its reference, `ENCODER.encode(Checker.check(...))`:
over random transits it must give the same bytes, or decline (None) and leave them to the
Checker. Demo configuration (tests/core/test_verdicts.py describes its gates and types)."""

from __future__ import annotations

from collections import defaultdict

import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from enforcement.config.load import make_checker
from enforcement.config.settings import Settings
from enforcement.core.changes import PermitChange
from enforcement.core.checker import Checker
from enforcement.core.judge import Judge, judge_for
from enforcement.core.live import LiveIndex
from enforcement.core.plates import normalise
from enforcement.core.rules import Rules

from ..support.common import Publish, at, permit

# Instants where rules change: both DST changes, a holiday, the August suspension's ends,
# schedule edges (Mon-Sat 08-20, Fri-Sat 22-03), type 4's loading windows.
EDGES = [
    at(s)
    for s in (
        "2026-03-29T01:00:00+00:00",
        "2026-03-29T02:30:00+02:00",
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T02:30:00+01:00",
        "2026-12-25T10:30:00+01:00",
        "2026-08-10T00:00:00+02:00",
        "2026-08-24T23:59:59+02:00",
        "2026-11-23T08:00:00+01:00",
        "2026-11-23T20:00:00+01:00",
        "2026-11-27T22:00:00+01:00",
        "2026-11-28T03:00:00+01:00",
        "2026-11-24T11:00:00+01:00",
        "2026-11-24T04:00:00+01:00",
    )
]
PERMITS = [
    permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00"),
    permit("RES-2", "AB123CD", "6", "2021-01-01T00:00:00+01:00"),  # two covering: sorted
    permit("LOAD-1", "EF456GH", "4", "2026-01-01T00:00:00+01:00", "2027-12-31T00:00:00+01:00"),
    permit("PED-1", "PE333PE", "5", "2020-01-01T00:00:00+01:00", zones=("PEDONALE",)),
    permit(
        "CUDE-1",
        "",
        "CUDE",
        "2025-01-01T00:00:00+01:00",
        "2030-01-01T00:00:00+01:00",
        source="cude",
        plates=(("FA001CU", True), ("FA002CU", False)),
    ),
    permit("DE-1", "M1234", "1", "2020-01-01T00:00:00+01:00"),
    # Renewed while running: two periods, both covering from 2026-06 to 2026-12.
    replace(
        permit("REN-1", "RN111RN", "1", "2024-01-01T00:00:00+01:00", "2027-01-01T00:00:00+01:00"),
        periods=(
            (at("2024-01-01T00:00:00+01:00"), at("2026-12-01T00:00:00+01:00")),
            (at("2026-06-01T00:00:00+02:00"), at("2027-01-01T00:00:00+01:00")),
        ),
    ),
    permit("CHG-1", "CH000CH", "1", "2020-01-01T00:00:00+01:00"),  # changed in the overlay
    # Validity edges at every instant above: [edge, edge + 1 h) and ending at the edge.
    *(
        replace(
            permit(f"EDGE-{i:02d}", f"ED{i:03d}GE", "1", "2020-01-01T00:00:00+01:00"),
            valid_from=e,
            valid_to=e + 3600,
        )
        for i, e in enumerate(EDGES)
    ),
    *(
        replace(
            permit(f"END-{i:02d}", f"EN{i:03d}DS", "2", "2020-01-01T00:00:00+01:00"), valid_to=e
        )
        for i, e in enumerate(EDGES)
    ),
]
READS = [
    "AB123CD",
    "ab123cd",
    "Ab123cD",
    "AB 123 CD",
    "AB123C0",  # one confusion from a permitted plate: near-match
    "A8123CD",  # corrected to AB123CD
    "EF456GH",
    "RN111RN",
    "PE333PE",
    "FA001CU",
    "FA002CU",
    "M1234",
    "MI234",
    "CH000CH",  # its permit changed: in the overlay
    "NE000WW",  # a plate only the overlay has
    "NE000VV",  # one confusion from it
    "ZZ999ZZ",
    "ZZ99",
    "ZZ9999999ZZ",
    "ZZ9999999ZZZ",
    "",
    "NA",
    "NONE",
    "unknown",
    "NOPLATES",
    "-",
    "АВ123СD",  # Cyrillic look-alikes
    *(f"ED{i:03d}GE" for i in range(len(EDGES))),
    *(f"EN{i:03d}DS" for i in range(len(EDGES))),
]
TID = "0123456789abcdef01234567"  # a transit id (record.transit_id's 24 hex digits)
EVENT_IDS = [None, "evt-1", "e" * 128, 'quote"d', "back\\slash", "tab\there", "é-accent", "~\x7f"]


@pytest.fixture
def live(publish: Publish) -> LiveIndex:
    live = publish(PERMITS)
    rev = live.overlay.revision
    for i, (pid, plates) in enumerate(
        (("CHG-1", (("CH000CH", True),)), ("NEW-1", (("NE000WW", True),)))
    ):
        change = PermitChange(
            rev + i + 1, rev + i, pid, "1", at("2026-01-01T00:00:00+01:00"), None, (), "x", plates
        )
        assert live.overlay.apply(change)
    return live


@pytest.fixture
def strict(demo: tuple[Settings, Rules]) -> Checker:
    """The demo's limits as configured: skew, history, delivery delay, index age."""
    settings, rules = demo
    return make_checker(rules, settings)


def _judge(
    checker: Checker, live: LiveIndex, counted: defaultdict[tuple[str, str], int]
) -> Judge | None:
    return judge_for(live, checker.rules, checker, counted)


instants = st.one_of(
    st.builds(lambda e, d: e + d, st.sampled_from(EDGES), st.integers(-7200, 7200)),
    st.sampled_from(EDGES).map(lambda e: e - 1),
    st.integers(at("2026-01-01T00:00:00+01:00"), at("2028-01-01T00:00:00+01:00")),
)
# How long after the capture the transit is judged: around the skew, delay and age limits.
delays = st.one_of(
    st.sampled_from([-301, -300, -299, 0, 1, 6 * 3600, 6 * 3600 + 1, 30 * 86400, 30 * 86400 + 1]),
    st.integers(-1000, 40 * 86400),
)
confidences = st.one_of(st.none(), st.sampled_from([0.0, 0.59, 0.6, 0.61, 1.0]), st.floats(0, 1))


@settings(
    max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    read=st.sampled_from(READS),
    country=st.sampled_from([None, "IT", "D", "f"]),
    t=instants,
    fraction=st.sampled_from([0.0, 0.5, 0.999999]),
    delay=st.one_of(delays, st.floats(-400, 40 * 86400)),
    gate=st.sampled_from(["PD-01", "PD-02", "PD-03"]),
    confidence=confidences,
    event_id=st.sampled_from(EVENT_IDS),
)
@example("AB123CD", None, at("2026-11-23T12:00:00+01:00"), 0.0, 1, "PD-01", 0.9, "evt-1")
def test_judge_gives_the_checkers_bytes_or_declines(
    live: LiveIndex,
    strict: Checker,
    read: str,
    country: str | None,
    t: int,
    fraction: float,
    delay: float,
    gate: str,
    confidence: float | None,
    event_id: str | None,
) -> None:
    counted: defaultdict[tuple[str, str], int] = defaultdict(int)
    judge = _judge(strict, live, counted)
    if judge is None:
        pytest.skip("C kernel not built")
    ts = t + fraction
    now = ts + delay
    body = judge.native(read, ts, gate, confidence, now, event_id)
    fields = judge.verdict(read, ts, gate, confidence, now)
    expected = strict.check(
        live, normalise(read, country), ts, strict.rules.gates[gate], confidence, now, event_id
    )
    grace = expected.grace_until
    if fields is not None:  # what a record needs, judged as the Checker does
        assert fields == (
            expected.verdict,
            expected.reason,
            expected.plate,
            expected.permits,
            expected.index_revision,
            None if grace is None else int(grace.timestamp()),
        )
    # With the log: the same judging, the answer with its transit id, the record's fields.
    logged = judge.logged(read, ts, gate, confidence, now, event_id, TID)
    if body is None:
        assert not counted and logged is None
        return
    assert fields is not None  # the bytes are those fields' (and the event id's)
    assert body == msgspec.json.encode(expected)
    assert logged == (
        msgspec.json.encode(replace(expected, transit_id=TID)),
        fields[:2],
        *fields[2:],
    )
    assert counted == {(expected.verdict, expected.reason): 1}


def test_the_common_cases_are_judged_natively(live: LiveIndex, strict: Checker) -> None:
    """Allowed, pending and not_enforced answers come from the Judge; doubts do not."""
    counted: defaultdict[tuple[str, str], int] = defaultdict(int)
    judge = _judge(strict, live, counted)
    if judge is None:
        pytest.skip("C kernel not built")
    monday = float(at("2026-11-23T12:00:00+01:00"))
    sunday = float(at("2026-11-22T12:00:00+01:00"))
    r = live.revision
    assert judge.native("ab123cd", monday, "PD-01", 0.9, monday + 1, "e1") == (
        b'{"verdict":"allowed","reason":"permit","plate":"AB123CD",'
        b'"permits":["RES-1","RES-2"],"index_revision":%d,"event_id":"e1"}' % r
    )
    assert judge.native("ZZ999ZZ", monday, "PD-01", None, monday + 1, "e2") == (
        b'{"verdict":"pending","reason":"no_permit","plate":"ZZ999ZZ","index_revision":%d,'
        b'"grace_until":"2026-11-26T12:00:00+01:00","event_id":"e2"}' % r
    )
    assert judge.native("ZZ999ZZ", sunday, "PD-01", None, sunday + 1, "e3") == (
        b'{"verdict":"not_enforced","reason":"gate_inactive","plate":"ZZ999ZZ",'
        b'"index_revision":%d,"event_id":"e3"}' % r
    )
    assert counted == {
        ("allowed", "permit"): 1,
        ("pending", "no_permit"): 1,
        ("not_enforced", "gate_inactive"): 1,
    }
    for declined in (
        ("AB123C0", monday, "PD-01", 0.9, monday + 1, "e"),  # near_match
        ("ZZ999ZZ", monday, "PD-01", 0.5, monday + 1, "e"),  # low_confidence
        ("ZZ999ZZ", monday, "PD-01", 0.9, monday - 600, "e"),  # clock_skew
        ("CH000CH", monday, "PD-01", 0.9, monday + 1, "e"),  # changed permits
        ("AB 123 CD", monday, "PD-01", 0.9, monday + 1, "e"),  # needs normalising
        ("AB123CD", monday, "PD-09", 0.9, monday + 1, "e"),  # unknown gate
        ("AB123CD", monday, "PD-01", 0.9, monday + 1, 'e"'),  # an event id with escapes
    ):
        assert judge.native(*declined) is None, declined
