"""A permit's validity periods: a renewal adds one, only a revocation ends them early.

Tables for the rules, a property test against a naive model (also through the database and
the index), and the regional circuit's renewals as the feed brings them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcement.config.settings import Settings
from enforcement.core.checker import Checker
from enforcement.core.plates import plate_key
from enforcement.core.rules import Rules
from loader.periods import cut, renewed, renewing, spans, with_spans
from loader.rebuild import index_from_db
from loader.sqlite import PermitDB
from loader.store import Period, PermitRow
from loader.sync import sync_source

from ..support.common import DEMO_CONFIG, at, publish_permits
from ..support.feeds import regional

A, B, C, D = 1_000, 2_000, 3_000, 4_000


def row(*periods: Period) -> PermitRow:
    base = PermitRow("P-1", "1", 0, None, (), "municipal", (("AB123CD", True),))
    return with_spans(base, periods)


@pytest.mark.parametrize(
    ("stored", "incoming", "expected"),
    [
        (None, [(A, B)], [(A, B)]),
        ([(A, B)], [(A, B)], [(A, B)]),  # the same export again
        ([(A, B)], [(B, C)], [(A, B), (B, C)]),  # renewed: the current period stays
        ([(A, B)], [(C, D)], [(A, B), (C, D)]),  # renewed after a gap
        ([(A, C)], [(B, D)], [(A, C), (B, D)]),  # renewed while running: both count
        ([(A, B)], [(A, C)], [(A, C)]),  # extended
        ([(A, C)], [(A, B)], [(A, B)]),  # its end corrected
        ([(A, None)], [(A, B)], [(A, B)]),  # an end given to an unlimited permit
        ([(A, B), (B, C)], [(A, B)], [(A, B), (B, C)]),  # an export from before the renewal
        ([(A, B), (B, C)], [(B, D)], [(A, B), (B, D)]),  # the renewal corrected
    ],
)
def test_a_period_joins_the_stored_ones(
    stored: list[Period] | None, incoming: list[Period], expected: list[Period]
) -> None:
    before = None if stored is None else row(*stored)
    assert spans(renewed(before, row(*incoming))) == tuple(expected)


@pytest.mark.parametrize(
    ("periods", "at_", "expected"),
    [
        ([(A, B), (B, C)], (A + B) // 2, [(A, (A + B) // 2)]),  # revoked in the first period
        ([(A, B), (B, C)], B, [(A, B)]),  # revoked at the renewal: the coming one never starts
        ([(A, B), (B, C)], (B + C) // 2, [(A, B), (B, (B + C) // 2)]),
        ([(A, B), (B, C)], D, [(A, B), (B, C)]),  # after both: nothing to cut
        ([(A, B), (B, C)], A, [(A, A)]),  # revoked before it began: covers nothing
        ([(A, None)], C, [(A, C)]),
    ],
)
def test_a_revocation_cuts_every_period(
    periods: list[Period], at_: int, expected: list[Period]
) -> None:
    assert spans(cut(row(*periods), at_)) == tuple(expected)


# -- against a naive model ---------------------------------------------------------------------

# An operation: ("renew", start, end) gives the permit a period (replacing the one with the same
# start), ("cut", at) revokes it.
instants = st.integers(0, 60).map(lambda i: i * 100)
operation = st.one_of(
    st.tuples(st.just("renew"), instants, st.one_of(st.none(), instants)).filter(
        lambda op: op[2] is None or op[2] > op[1]
    ),
    st.tuples(st.just("cut"), instants),
)


def model(first: Period, ops: list[tuple]) -> set[int]:  # type: ignore[type-arg]
    """The instants covered, computed as plainly as the rules say it."""
    periods = {first[0]: first[1]}
    for op in ops:
        if op[0] == "renew":
            periods[op[1]] = op[2]
        else:
            at_ = op[1]
            kept = {s: (at_ if e is None or e > at_ else e) for s, e in periods.items() if s < at_}
            periods = kept or {min(periods): min(periods)}
    return {
        t
        for t in range(0, 7_000, 50)
        for s, e in periods.items()
        if s <= t and (e is None or t < e)
    }


def covered(p: PermitRow) -> set[int]:
    return {t for t in range(0, 7_000, 50) for s, e in spans(p) if s <= t and (e is None or t < e)}


@given(st.tuples(instants, instants).filter(lambda s: s[1] > s[0]), st.lists(operation, max_size=8))
def test_renewals_and_revocations_match_a_naive_model(first: Period, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    p = row(first)
    for op in ops:
        p = renewed(p, row((op[1], op[2]))) if op[0] == "renew" else cut(p, op[1])
    assert covered(p) == model(first, ops)


@settings(max_examples=40, deadline=None)
@given(st.tuples(instants, instants).filter(lambda s: s[1] > s[0]), st.lists(operation, max_size=6))
def test_through_the_database_and_the_index(first: Period, ops: list[tuple]) -> None:  # type: ignore[type-arg]
    """The same operations as an import and revocations write them, then the index built
    from the database: a plate is covered exactly where the model says."""
    rules = _rules()
    with tempfile.TemporaryDirectory() as tmp, PermitDB(Path(tmp) / "p.sqlite") as db:
        db.upsert([row(first)], merge=renewing())
        for op in ops:
            if op[0] == "renew":
                db.upsert([row((op[1], op[2]))], merge=renewing())
            else:
                db.upsert([row(first)], merge=renewing({"P-1": op[1]}, cut_only=["P-1"]))
        stored = db.get("P-1")
        assert stored is not None and covered(stored) == model(first, ops)
        index = index_from_db(db, rules, history_days=100_000, now=10_000)
        intervals = index.intervals(plate_key("AB123CD"))
        in_index = {t for t in range(0, 7_000, 50) for iv in intervals if iv.start <= t < iv.end}
        assert in_index == model(first, ops)


def _rules() -> Rules:
    from enforcement.config.load import load_config

    return load_config(DEMO_CONFIG, {"VARCO_DATA_DIR": "/nonexistent/varco-test"})[1]


# -- the regional circuit's renewals, as the feed brings them -----------------------------------

SOURCES = '\n[sources.vivipass]\nkind = "regional_csv"\npath = "feeds/vivipass.csv"\n'
PASS = "L736_2025_00007;L736;RN123NW;S;DISABILI;{};{};{};{};"


@pytest.fixture
def city(tmp_path: Path) -> tuple[Settings, Rules]:
    from enforcement.config.load import load_config

    config = tmp_path / "city.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8") + SOURCES, encoding="utf-8")
    return load_config(config, {"VARCO_DATA_DIR": str(tmp_path / "data")})


def sync(
    city: tuple[Settings, Rules],
    *rows: str,
    now: str = "2026-11-20T12:00:00+01:00",
    accept_shrink: bool = False,
) -> int:
    settings, rules = city
    source = settings.sources["vivipass"]
    with PermitDB(settings.storage.database_path) as db:
        report = sync_source(
            db,
            rules,
            settings,
            source,
            data=regional(*rows),
            now=at(now),
            accept_shrink=accept_shrink,
        )
        assert report.feed.rejects == []
        return report.changed


def verdicts(city: tuple[Settings, Rules], *instants: str) -> list[tuple[str, str]]:
    settings, rules = city
    live = publish_permits(settings, rules, [])
    checker = Checker(
        rules,
        review_confidence=0.6,
        max_clock_skew_s=10**10,
        index_max_age_s=10**10,
        max_transit_age_s=10**10,
        max_delivery_delay_s=10**10,
    )
    gate = rules.gates["PD-03"]
    from enforcement.core.plates import normalise

    out = []
    for instant in instants:
        t = at(instant)
        v = checker.check(live, normalise("RN123NW"), t, gate, 0.9, t + 1)
        out.append((v.verdict, v.reason))
    return out


def test_an_early_renewal_keeps_the_running_period(city: tuple[Settings, Rules]) -> None:
    """01/12/2025-30/11/2026 renewed early to 01/12/2026-30/11/2027: on 20/11/2026 the holder
    is covered by the running period (the renewal used to replace it: pending not_yet_valid)."""
    sync(city, PASS.format("01/12/2025", "30/11/2026", "attivo", ""))
    sync(city, PASS.format("01/12/2026", "30/11/2027", "attivo", ""))
    assert verdicts(
        city,
        "2026-11-20T12:00:00+01:00",
        "2026-11-30T23:59:00+01:00",
        "2026-12-01T00:00:00+01:00",
        "2027-11-30T23:59:00+01:00",
        "2027-12-01T00:00:00+01:00",
    ) == [("allowed", "permit")] * 4 + [("pending", "expired")]


def test_a_revocation_after_an_early_renewal_ends_both_periods(
    city: tuple[Settings, Rules],
) -> None:
    sync(city, PASS.format("01/12/2025", "30/11/2026", "attivo", ""))
    sync(city, PASS.format("01/12/2026", "30/11/2027", "attivo", ""))
    # Decadenza on 25/11/2026, while the renewed period is still running.
    sync(city, PASS.format("01/12/2026", "30/11/2027", "revocato", "25/11/2026"))
    assert verdicts(
        city, "2026-11-24T12:00:00+01:00", "2026-11-25T12:00:00+01:00", "2027-01-15T12:00:00+01:00"
    ) == [("allowed", "permit"), ("pending", "expired"), ("pending", "expired")]


def test_a_pass_missing_from_the_export_is_closed_whole(city: tuple[Settings, Rules]) -> None:
    other = "G224_2025_00001;G224;OT111HR;S;DISABILI;01/01/2025;31/12/2027;attivo;;"
    sync(city, PASS.format("01/12/2025", "30/11/2026", "attivo", ""), other)
    sync(city, PASS.format("01/12/2026", "30/11/2027", "attivo", ""), other)
    # No longer listed: closed now (one of two: past max_close, so accepted explicitly).
    sync(city, other, now="2026-11-22T12:00:00+01:00", accept_shrink=True)
    assert verdicts(city, "2026-11-21T12:00:00+01:00", "2026-12-15T12:00:00+01:00") == [
        ("allowed", "permit"),
        ("pending", "expired"),
    ]


def test_a_duplicate_replaces_a_renewed_pass_whole(city: tuple[Settings, Rules]) -> None:
    sync(city, PASS.format("01/12/2025", "30/11/2026", "attivo", ""))
    sync(city, PASS.format("01/12/2026", "30/11/2027", "attivo", ""))
    dup = "L736_2026_00100;L736;DP456PL;S;DISABILI;18/11/2026;30/11/2027;duplicato;;L736_2025_00007"
    sync(city, dup)  # the lost pass (also missing from the export) ends where the duplicate starts
    assert verdicts(city, "2026-11-17T12:00:00+01:00", "2026-11-19T12:00:00+01:00") == [
        ("allowed", "permit"),
        ("pending", "expired"),
    ]


def test_an_import_renewal_adds_a_period(city: tuple[Settings, Rules], tmp_path: Path) -> None:
    from loader.importer import import_csv
    from tests.support.store import HEADER

    settings, rules = city
    first = HEADER + "R-1,RN123NW,2,2025-12-01,2026-12-01,,municipal,true\n"
    renewal = HEADER + "R-1,RN123NW,2,2026-12-01,2027-12-01,,municipal,true\n"
    with PermitDB(settings.storage.database_path) as db:
        for text in (first, renewal, renewal, first):  # each sent again changes nothing
            path = tmp_path / "permits.csv"
            path.write_text(text, encoding="utf-8")
            import_csv(path, rules, db)
        stored = db.get("R-1")
    assert stored is not None
    assert spans(stored) == (
        (at("2025-12-01T00:00:00+01:00"), at("2026-12-01T00:00:00+01:00")),
        (at("2026-12-01T00:00:00+01:00"), at("2027-12-01T00:00:00+01:00")),
    )
    assert (
        verdicts(city, "2026-11-20T12:00:00+01:00", "2027-06-01T12:00:00+02:00")
        == [("allowed", "permit")] * 2
    )
