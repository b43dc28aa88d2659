"""Verdict tables through Checker against a real permit database and a published snapshot.

Demo configuration: gates PD-01 (ZTL, Mon-Sat 08-20, inactive on holidays), PD-02 (also
Fri-Sat 22:00-03:00, suspended 10-24 August), PD-03 (PEDONALE, always); zone ZTL covers
PEDONALE; type 4 loads 04:00-11:00 and 15:00-16:00; CUDE admits only the primary plate.
"""

from __future__ import annotations

import random

import pytest

from enforcement.config.load import make_checker
from enforcement.config.settings import Settings, with_changes
from enforcement.core.checker import Checker
from enforcement.core.live import LiveIndex
from enforcement.core.plates import normalise
from enforcement.core.rules import Rules
from enforcement.core.verdict import Verdict

from ..support.common import Publish, at, permit

NOW = at("2026-11-22T12:00:00+01:00")
PERMITS = [
    permit("RES-1", "AB123CD", "1", "2020-01-01T00:00:00+01:00"),
    # Renewal: the new permit starts four months before the old one ends.
    permit("OLD-1", "RN111RN", "2", "2023-12-01T00:00:00+01:00", "2026-12-01T00:00:00+01:00"),
    permit("NEW-1", "RN111RN", "2", "2026-08-01T00:00:00+02:00", "2029-08-01T00:00:00+02:00"),
    # Interval ends: [2026-11-01 10:00, 2026-11-02 10:00)
    permit("DAY-1", "EN222DS", "TEMP", "2026-11-01T10:00:00+01:00", "2026-11-02T10:00:00+01:00"),
    permit("LOAD-1", "EF456GH", "4", "2026-01-01T00:00:00+01:00", "2026-12-31T00:00:00+01:00"),
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
    permit("DE-1", "M1234", "1", "2020-01-01T00:00:00+01:00"),  # a foreign plate
]


@pytest.fixture
def live(publish: Publish) -> LiveIndex:
    return publish(PERMITS)


def verdict(
    checker: Checker,
    live: LiveIndex,
    plate: str,
    instant: str | int,
    gate: str = "PD-03",
    confidence: float | None = 0.9,
    country: str | None = None,
    now: int | None = None,
) -> Verdict:
    """The verdict as the transit arrives (`now` = capture instant + 1 s unless given)."""
    ts = at(instant) if isinstance(instant, str) else instant
    return checker.check(
        live,
        normalise(plate, country),
        ts,
        checker.rules.gates[gate],
        confidence,
        ts + 1 if now is None else now,
    )


@pytest.mark.parametrize(
    ("plate", "instant", "gate", "expected", "reason", "permits"),
    [
        ("AB123CD", "2026-11-22T12:00:00+01:00", "PD-03", "allowed", "permit", ["RES-1"]),
        ("ab 123 cd", "2026-11-22T12:00:00+01:00", "PD-03", "allowed", "permit", ["RES-1"]),
        # Renewal overlap: both permits cover, both are named.
        ("RN111RN", "2026-11-20T12:00:00+01:00", "PD-03", "allowed", "permit", ["OLD-1", "NEW-1"]),
        ("RN111RN", "2026-12-05T12:00:00+01:00", "PD-03", "allowed", "permit", ["NEW-1"]),
        # [valid_from, valid_to)
        ("EN222DS", "2026-11-01T09:59:59+01:00", "PD-03", "pending", "not_yet_valid", []),
        ("EN222DS", "2026-11-01T10:00:00+01:00", "PD-03", "allowed", "permit", ["DAY-1"]),
        ("EN222DS", "2026-11-02T09:59:59+01:00", "PD-03", "allowed", "permit", ["DAY-1"]),
        ("EN222DS", "2026-11-02T10:00:00+01:00", "PD-03", "pending", "expired", []),
        # Loading windows on both DST change days, local time.
        ("EF456GH", "2026-03-29T10:59:00+02:00", "PD-03", "allowed", "permit", ["LOAD-1"]),
        ("EF456GH", "2026-03-29T11:00:00+02:00", "PD-03", "pending", "outside_window", []),
        ("EF456GH", "2026-10-25T15:30:00+01:00", "PD-03", "allowed", "permit", ["LOAD-1"]),
        ("EF456GH", "2026-10-25T16:00:00+01:00", "PD-03", "pending", "outside_window", []),
        ("EF456GH", "2026-10-25T04:00:00+01:00", "PD-03", "allowed", "permit", ["LOAD-1"]),
        # Gates not enforced: Sunday, Christmas, August suspension; night window from Friday.
        ("ZZ999ZZ", "2026-11-22T12:00:00+01:00", "PD-01", "not_enforced", "gate_inactive", []),
        ("ZZ999ZZ", "2026-12-25T12:00:00+01:00", "PD-01", "not_enforced", "gate_inactive", []),
        ("ZZ999ZZ", "2026-08-12T12:00:00+02:00", "PD-02", "not_enforced", "gate_inactive", []),
        ("ZZ999ZZ", "2026-11-21T02:00:00+01:00", "PD-02", "pending", "no_permit", []),
        ("ZZ999ZZ", "2026-11-23T02:00:00+01:00", "PD-02", "not_enforced", "gate_inactive", []),
        # Zones: a ZTL permit covers the pedestrian area; a pedestrian permit not the ZTL.
        ("AB123CD", "2026-11-23T12:00:00+01:00", "PD-01", "allowed", "permit", ["RES-1"]),
        ("PE333PE", "2026-11-23T12:00:00+01:00", "PD-03", "allowed", "permit", ["PED-1"]),
        ("PE333PE", "2026-11-23T12:00:00+01:00", "PD-01", "pending", "wrong_zone", []),
        # CUDE: only the primary plate transits.
        ("FA001CU", "2026-11-22T12:00:00+01:00", "PD-03", "allowed", "permit", ["CUDE-1"]),
        ("FA002CU", "2026-11-22T12:00:00+01:00", "PD-03", "pending", "not_primary_plate", []),
        # Unreadable reads are review, never pending.
        ("", "2026-11-22T12:00:00+01:00", "PD-03", "review", "unreadable", []),
        ("unknown", "2026-11-22T12:00:00+01:00", "PD-03", "review", "unreadable", []),
        ("UNKNOWN", "2026-11-22T12:00:00+01:00", "PD-03", "review", "unreadable", []),
        ("-", "2026-11-22T12:00:00+01:00", "PD-03", "review", "unreadable", []),
        ("--", "2026-11-22T12:00:00+01:00", "PD-03", "review", "unreadable", []),
        # One OCR confusion from a permitted plate: review, not pending.
        ("AB123CO", "2026-11-22T12:00:00+01:00", "PD-03", "review", "near_match", []),
        ("ZZ999ZZ", "2026-11-22T12:00:00+01:00", "PD-03", "pending", "no_permit", []),
    ],
)
def test_verdict_table(
    checker: Checker,
    live: LiveIndex,
    plate: str,
    instant: str,
    gate: str,
    expected: str,
    reason: str,
    permits: list[str],
) -> None:
    v = verdict(checker, live, plate, instant, gate)
    assert (v.verdict, v.reason, sorted(v.permits)) == (expected, reason, sorted(permits))
    assert v.index_revision == live.revision
    assert (v.grace_until is not None) == (expected == "pending")


def test_clock_skew(checker: Checker, live: LiveIndex) -> None:
    ahead = verdict(checker, live, "ZZ999ZZ", "2026-11-22T13:00:00+01:00", now=NOW)
    assert (ahead.verdict, ahead.reason) == ("review", "clock_skew")
    within = verdict(checker, live, "ZZ999ZZ", "2026-11-22T12:04:00+01:00", now=NOW)
    assert within.verdict == "pending"  # 4 minutes: inside max_clock_skew (5m)
    late = verdict(checker, live, "ZZ999ZZ", "2026-11-20T12:00:00+01:00", now=NOW)
    assert late.verdict == "pending"  # a late re-upload is judged at its capture time


def test_too_old_is_review(demo: tuple[Settings, Rules], live: LiveIndex) -> None:
    settings, rules = demo
    checker = make_checker(rules, settings)  # history_days = 30
    gate = rules.gates["PD-03"]
    for ts in (5, at("2026-10-01T12:00:00+02:00")):  # a clock reset to 1970; 52 days late
        v = checker.check(live, normalise("ZZ999ZZ"), ts, gate, 0.9, NOW)
        assert (v.verdict, v.reason) == ("review", "too_old")
    # A re-upload within the history is judged, but late: no ground for a fine by itself.
    recent = checker.check(live, normalise("ZZ999ZZ"), NOW - 29 * 86400, gate, 0.9, NOW)
    assert (recent.verdict, recent.reason) == ("review", "late_delivery")
    # Replaying an archive: a delivery delay as long as the history lets it be judged.
    replay = make_checker(
        rules, with_changes(settings, enforcement={"max_delivery_delay_s": 30 * 86400})
    )
    v = replay.check(live, normalise("ZZ999ZZ"), NOW - 29 * 86400, gate, 0.9, NOW)
    assert (v.verdict, v.reason) == ("pending", "no_permit")


@pytest.mark.parametrize(
    ("delay_s", "plate", "expected"),
    [
        (0, "ZZ999ZZ", ("pending", "no_permit")),
        (6 * 3600, "ZZ999ZZ", ("pending", "no_permit")),  # the bound itself: still on time
        (6 * 3600 + 1, "ZZ999ZZ", ("review", "late_delivery")),
        (4 * 86400, "ZZ999ZZ", ("review", "late_delivery")),  # a backlog after 4 days offline
        (4 * 86400, "AB123CD", ("allowed", "permit")),  # covered: late or not, allowed
        (4 * 86400, "EN222DS", ("review", "late_delivery")),  # expired permit: not a fine
    ],
)
def test_late_delivery(
    demo: tuple[Settings, Rules],
    live: LiveIndex,
    delay_s: int,
    plate: str,
    expected: tuple[str, str],
) -> None:
    """Received `delay_s` after capture (default enforcement.max_delivery_delay, 6 h)."""
    settings, rules = demo
    checker = make_checker(rules, settings)
    captured = NOW - 5 * 86400
    v = checker.check(
        live, normalise(plate), captured, rules.gates["PD-03"], 0.9, captured + delay_s
    )
    assert (v.verdict, v.reason) == expected


def test_pending_names_grace_end(checker: Checker, live: LiveIndex) -> None:
    v = verdict(checker, live, "ZZ999ZZ", "2026-11-22T12:00:00+01:00")
    assert v.grace_until is not None
    assert int(v.grace_until.timestamp()) == at("2026-11-25T12:00:00+01:00")  # PEDONALE: 72h
    assert v.grace_until.utcoffset() is not None


def test_foreign_near_match(checker: Checker, live: LiveIndex) -> None:
    v = verdict(checker, live, "MI234", "2026-11-22T12:00:00+01:00", country="DE")
    assert (v.verdict, v.reason) == ("review", "near_match")


def test_low_confidence(checker: Checker, live: LiveIndex) -> None:
    uncovered = verdict(checker, live, "ZZ999ZZ", "2026-11-22T12:00:00+01:00", confidence=0.3)
    assert (uncovered.verdict, uncovered.reason) == ("review", "low_confidence")
    covered = verdict(checker, live, "AB123CD", "2026-11-22T12:00:00+01:00", confidence=0.3)
    assert covered.verdict == "allowed"  # allowing can never become a fine
    unknown = verdict(checker, live, "ZZ999ZZ", "2026-11-22T12:00:00+01:00", confidence=None)
    assert unknown.verdict == "pending"  # no confidence given is unknown, not zero


def test_stale_index_is_review(demo: tuple[Settings, Rules], live: LiveIndex) -> None:
    _, rules = demo
    strict = Checker(
        rules,
        review_confidence=0.6,
        max_clock_skew_s=300,
        index_max_age_s=3600,
        max_transit_age_s=10**10,
        max_delivery_delay_s=10**10,
    )
    later = live.built_at + 7200
    v = strict.check(live, normalise("ZZ999ZZ"), later, rules.gates["PD-03"], 0.9, later)
    assert (v.verdict, v.reason) == ("review", "index_stale")
    ok = strict.check(live, normalise("AB123CD"), later, rules.gates["PD-03"], 0.9, later)
    assert ok.verdict == "allowed"


def test_batch_equals_single(checker: Checker, live: LiveIndex) -> None:
    rng = random.Random(20261122)
    plates = [
        "AB123CD",
        "RN111RN",
        "EN222DS",
        "EF456GH",
        "PE333PE",
        "FA001CU",
        "FA002CU",
        "M1234",
        "MI234",
        "AB123CO",
        "ZZ999ZZ",
        "",
        "unknown",
        "A8123CD",
    ]
    gates = list(checker.rules.gates.values())
    items = []
    for i in range(600):
        ts = at("2026-01-01T00:00:00+01:00") + rng.randrange(0, 330 * 86400)
        items.append(
            (
                normalise(rng.choice(plates)),
                ts + rng.random(),
                rng.choice(gates),
                rng.choice([None, 0.2, 0.95]),
                f"e{i}",
            )
        )
    now = at("2026-11-30T00:00:00+01:00")
    batch = checker.check_batch(live, items, now)
    for item, b in zip(items, batch, strict=True):
        plate, ts, gate, conf, event_id = item
        assert b == checker.check(live, plate, ts, gate, conf, now, event_id), item
    assert {v.verdict for v in batch} == {"allowed", "pending", "review", "not_enforced"}


def test_c_scan_equals_python_scan(checker: Checker, live: LiveIndex) -> None:
    """The C scanner (used when built) against its Python reference, field by field."""
    if live.scanner is None:
        pytest.skip("C kernel not built")
    rng = random.Random(7)
    plates = [
        "AB123CD",
        "RN111RN",
        "EN222DS",
        "EF456GH",
        "PE333PE",
        "FA001CU",
        "FA002CU",
        "M1234",
        "ZZ999ZZ",
    ]
    special = [
        at(s)
        for s in (
            "2026-03-29T01:00:00+00:00",
            "2026-10-25T01:00:00+00:00",
            "2026-12-25T10:30:00+01:00",
            "2026-11-02T10:00:00+01:00",
            "2026-11-01T09:59:59+01:00",
        )
    ]
    masks = sorted(set(live.gate_masks.values()) | set(live.zone_masks.values()) | {0})
    for _ in range(3000):
        t = (
            rng.choice(special) + rng.randrange(-7200, 7200)
            if rng.random() < 0.3
            else (at("2019-01-01T00:00:00+01:00") + rng.randrange(0, 12 * 365 * 86400))
        )
        plate, mask = rng.choice(plates), rng.choice(masks)
        assert live.scanner.scan(plate, t, mask) == checker.scan_python(live, plate, t, mask), (
            plate,
            t,
            mask,
        )


def test_c_near_equals_python_near(checker: Checker, live: LiveIndex) -> None:
    if live.scanner is None:
        pytest.skip("C kernel not built")
    reads = [
        "AB123C0",
        "AB123CO",
        "A8123CD",
        "RN1I1RN",
        "MI234",
        "M1Z34",
        "EF4S6GH",
        "F4001CU",
        "FA0O1CU",
        "ZZ999ZZ",
        "0",
        "AB123CD",
    ]
    masks = sorted(set(live.gate_masks.values()) | {0})
    rng = random.Random(11)
    for _ in range(1000):
        text, mask = rng.choice(reads), rng.choice(masks)
        t = at("2026-01-01T00:00:00+01:00") + rng.randrange(0, 365 * 86400)
        assert live.scanner.near(text, t, mask) == checker.near_python(live, text, t, mask)
    assert live.scanner.near("AB123CO", NOW, live.zone_masks["ZTL"]) == ["AB123CD"]


def test_many_covering_permits(checker: Checker, publish: Publish) -> None:
    """A fleet vehicle on a hundred overlapping passes: all named, no limit, no error.

    An eight-character foreign plate, so the misread below cannot be fixed by the Italian rule and
    exercises the near-match scan over the same hundred records.
    """
    fleet = [
        permit(f"FLEET-{i:03d}", "FLT12345", "1", "2020-01-01T00:00:00+01:00") for i in range(100)
    ]
    live = publish(fleet)
    v = verdict(checker, live, "FLT12345", "2026-11-22T12:00:00+01:00")
    assert v.verdict == "allowed" and len(v.permits) == 100
    v = verdict(checker, live, "FLT1Z345", "2026-11-22T12:00:00+01:00")
    assert (v.verdict, v.reason) == ("review", "near_match")
