"""The change overlay must answer exactly as a snapshot rebuilt with the same changes."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcement.config.load import load_config
from enforcement.config.settings import Settings
from enforcement.core.changes import PermitChange
from enforcement.core.checker import Checker
from enforcement.core.live import LiveIndex
from enforcement.core.plates import Plate
from enforcement.core.police import plate_view
from enforcement.core.rules import Rules
from loader.periods import with_spans
from loader.store import PermitRow

from ..support.common import DEMO_CONFIG, at, permit, publish_permits

T0 = at("2026-03-01T00:00:00+01:00")
PLATES = ["AB123CD", "AB123CO", "EF456GH", "XY999ZZ"]  # CO/CD: a near-match pair


def change_of(row: PermitRow, revision: int, prev: int) -> PermitChange:
    return PermitChange(
        revision,
        prev,
        row.permit_id,
        row.type,
        row.valid_from,
        row.valid_to,
        row.zones,
        row.source,
        row.plates,
        row.periods,
    )


@st.composite
def permits(draw: st.DrawFn, ids: list[str]) -> PermitRow:
    pid = draw(st.sampled_from(ids))
    type_ = draw(st.sampled_from(["1", "4", "CUDE"]))
    start = T0 + draw(st.integers(0, 20)) * 86400 + draw(st.integers(0, 23)) * 3600
    end = None if type_ == "1" and draw(st.booleans()) else start + draw(st.integers(1, 30)) * 3600
    plates = draw(st.lists(st.sampled_from(PLATES), min_size=1, max_size=2, unique=True))
    flags = [(p, i == 0) for i, p in enumerate(plates)]
    zones = draw(st.sampled_from([(), ("ZTL",), ("PEDONALE",)]))
    row = PermitRow(pid, type_, start, end, zones, "municipal", tuple(sorted(flags)))
    if end is not None and draw(st.booleans()):  # renewed: a second period, maybe overlapping
        again = end + draw(st.integers(-5, 48)) * 3600
        row = with_spans(row, [(start, end), (again, again + draw(st.integers(1, 30)) * 3600)])
    return row


def _cfg(tmp: Path) -> tuple[Settings, Rules]:
    return load_config(DEMO_CONFIG, {"VARCO_DATA_DIR": str(tmp)})


def _checker(settings: Settings, rules: Rules) -> Checker:
    return Checker(
        rules,
        review_confidence=settings.enforcement.review_confidence,
        max_clock_skew_s=10**10,
        index_max_age_s=10**10,
        max_transit_age_s=10**10,
        max_delivery_delay_s=10**10,
    )


def _answers(checker: Checker, live: LiveIndex, plate: str, t: int) -> tuple[object, ...]:
    out: list[object] = []
    for zone, mask in sorted(live.zone_masks.items()):
        ids, miss = checker.cover(live, plate, t, mask)
        if live.scanner is not None:  # the C scan skips superseded rows as the reference does
            assert live.scanner.scan(plate, t, mask) == checker.scan_python(live, plate, t, mask)
        out.append((zone, sorted(ids), miss))
    gate = checker.rules.gates["PD-01"]
    v = checker.check(live, Plate(plate, plate), t, gate, None, now=t)
    out.append((v.verdict, v.reason, sorted(v.permits)))
    return tuple(out)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_overlay_equals_rebuild(data: st.DataObject) -> None:
    ids = [f"P{i}" for i in range(6)]
    base = data.draw(st.lists(permits(ids), max_size=6, unique_by=lambda p: p.permit_id))
    changes = data.draw(st.lists(permits(ids), min_size=1, max_size=8))
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        settings_a, rules = _cfg(Path(a))
        live = publish_permits(settings_a, rules, base)
        rev = prev = live.revision
        for row in changes:
            rev += 1
            assert live.overlay.apply(change_of(row, rev, prev))
            prev = rev
        final = {p.permit_id: p for p in base}
        final.update({p.permit_id: p for p in changes})
        settings_b, _ = _cfg(Path(b))
        rebuilt = publish_permits(settings_b, rules, list(final.values()))
        checker = _checker(settings_a, rules)
        instants = data.draw(st.lists(st.integers(0, 25 * 86400), min_size=1, max_size=6))
        for plate in PLATES:
            for dt_ in instants:
                t = T0 + dt_
                assert _answers(checker, live, plate, t) == _answers(checker, rebuilt, plate, t)
            when = dt.datetime.fromtimestamp(T0 + instants[0], dt.UTC)
            got = plate_view(checker, live, plate, when, ["ZTL"])
            want = plate_view(checker, rebuilt, plate, when, ["ZTL"])
            assert sorted(p.permit_id for p in got.permits) == sorted(
                p.permit_id for p in want.permits
            )
            assert got.zones == want.zones
            assert [n.plate for n in got.near_matches] == [n.plate for n in want.near_matches]
        # The batch path agrees with the single one.
        gate = rules.gates["PD-01"]
        items = [(Plate(p, p), float(T0 + d), gate, None, None) for p in PLATES for d in instants]
        batch = checker.check_batch(live, items, now=T0 + 30 * 86400)
        single = [checker.check(live, it[0], it[1], gate, None, T0 + 30 * 86400) for it in items]
        assert [(v.verdict, v.reason, sorted(v.permits)) for v in batch] == [
            (v.verdict, v.reason, sorted(v.permits)) for v in single
        ]


def test_gap_marks_stale_and_replays_are_harmless(tmp_path: Path) -> None:
    settings_, rules = _cfg(tmp_path)
    live = publish_permits(
        settings_, rules, [permit("P1", "AB123CD", "1", "2026-01-01T00:00+01:00")]
    )
    s = live.revision
    new = permit("P2", "EF456GH", "1", "2026-01-01T00:00+01:00")
    assert live.overlay.apply(change_of(new, s + 1, s))
    assert live.overlay.apply(change_of(new, s + 1, s))  # the same entry again: no effect
    assert live.overlay.apply(change_of(new, s, s - 1))  # older than applied: skipped
    assert live.revision == s + 1 and len(live.overlay) == 1
    assert not live.overlay.apply(change_of(new, s + 5, s + 3))  # s+2..s+3 never seen
    assert live.overlay.stale is not None and live.revision == s + 1
    checker = _checker(settings_, rules)
    gate = rules.gates["PD-01"]
    t = at("2026-06-01T12:00:00+02:00")
    v = checker.check(live, Plate("ZZ111ZZ", "ZZ111ZZ"), t, gate, None, now=t)
    assert (v.verdict, v.reason) == ("review", "index_stale")  # never pending on a stale index
    v = checker.check(live, Plate("EF456GH", "EF456GH"), t, gate, None, now=t)
    assert v.verdict == "allowed" and v.permits == ["P2"]  # what is known still allows


def test_revocation_through_the_overlay(tmp_path: Path) -> None:
    settings_, rules = _cfg(tmp_path)
    p = permit("P1", "AB123CD", "1", "2026-01-01T00:00+01:00")
    live = publish_permits(settings_, rules, [p])
    checker = _checker(settings_, rules)
    gate = rules.gates["PD-01"]
    t = at("2026-06-01T12:00:00+02:00")
    assert checker.check(live, Plate("AB123CD", "AB123CD"), t, gate, None, t).verdict == "allowed"
    revoked = PermitRow("P1", "1", p.valid_from, t - 60, (), "municipal", p.plates)
    assert live.overlay.apply(change_of(revoked, live.revision + 1, live.revision))
    v = checker.check(live, Plate("AB123CD", "AB123CD"), t, gate, None, t)
    assert (v.verdict, v.reason) == ("pending", "expired")
    v = checker.check(live, Plate("AB123CD", "AB123CD"), t - 120, gate, None, t)
    assert v.verdict == "allowed"  # before the revocation it still covered


def test_a_renewed_permit_in_the_police_view_and_the_overlay(tmp_path: Path) -> None:
    """Renewed four months early: the running period and the coming one, each with its status,
    whether the renewal is in the snapshot or arrived as a change since."""
    settings, rules = _cfg(tmp_path)
    old = permit("RES-9", "RN222RN", "2", "2025-12-01T00:00:00+01:00", "2026-12-01T00:00:00+01:00")
    renewed = with_spans(
        old, [(old.valid_from, old.valid_to), (old.valid_to, at("2027-12-01T00:00:00+01:00"))]
    )
    checker = _checker(settings, rules)
    when = dt.datetime.fromisoformat("2026-11-20T12:00:00+01:00")
    in_snapshot = publish_permits(settings, rules, [renewed])
    live = publish_permits(settings, rules, [old])  # the renewal comes as a change
    assert live.overlay.apply(change_of(renewed, live.revision + 1, live.revision))
    for index in (in_snapshot, live):
        view = plate_view(checker, index, "RN222RN", when, ["ZTL"])
        assert [(p.permit_id, p.valid_from.year, p.status) for p in view.permits] == [
            ("RES-9", 2025, "valid"),
            ("RES-9", 2026, "not_yet_valid"),
        ]
        assert [(z.verdict, z.permits) for z in view.zones] == [("allowed", ["RES-9"])]
        v = checker.check(
            index,
            Plate("RN222RN", "RN222RN"),
            when.timestamp(),
            rules.gates["PD-03"],
            0.9,
            when.timestamp(),
        )
        assert (v.verdict, v.permits) == ("allowed", ["RES-9"])
