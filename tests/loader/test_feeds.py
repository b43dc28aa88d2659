"""The regional circuit and CUDE feeds, written from the circuit's description (seed 004):
Windows-1252 accents, overlapping passes, a renewal, a duplicate replacing a lost pass, a CUDE
badge with three plates, a truncated file, rows missing from a complete export, the shrink
hold; and the verdicts the synced permits give."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from enforcement.config.load import load_config
from enforcement.config.settings import Settings, Source, with_changes
from enforcement.core.checker import Checker
from enforcement.core.plates import normalise
from enforcement.core.rules import Rules
from loader.feedcsv import FeedFileError
from loader.periods import spans
from loader.sqlite import PermitDB
from loader.sync import SyncHeld, sync_source

from ..support.common import DEMO_CONFIG, at, publish_permits
from ..support.feeds import GOOD, regional

CUDE_HEADER = "codice_cude;targa;tipo_targa;inizio;fine;data_revoca"
NOW = at("2026-11-20T12:00:00+01:00")
SOURCES = """
[sources.vivipass]
kind = "regional_csv"
path = "feeds/vivipass.csv"

[sources.cude]
kind = "cude_csv"
path = "feeds/cude.csv"
type = "CUDE"
"""


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Settings, Rules]:
    """The demo city with both feeds configured, exports under tmp_path/feeds."""
    config = tmp_path / "city.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8") + SOURCES, encoding="utf-8")
    return load_config(config, {"VARCO_DATA_DIR": str(tmp_path / "data")})


def cude(*rows: str) -> bytes:
    return ("\n".join([CUDE_HEADER, *rows]) + "\n").encode()


def source(settings: Settings, name: str) -> Source:
    return settings.sources[name]


def sync(demo: tuple[Settings, Rules], name: str, data: bytes, **kw: object):  # type: ignore[no-untyped-def]
    settings, rules = demo
    with PermitDB(settings.storage.database_path) as db:
        return sync_source(db, rules, settings, source(settings, name), data=data, now=NOW, **kw)  # type: ignore[arg-type]


def stored(demo: tuple[Settings, Rules], pid: str):  # type: ignore[no-untyped-def]
    with PermitDB(demo[0].storage.database_path) as db:
        return db.get(pid), db.history(pid)


def test_windows_1252_overlaps_and_verdicts(demo: tuple[Settings, Rules]) -> None:
    r = sync(demo, "vivipass", regional(*GOOD))
    assert (r.feed.encoding, r.feed.rows, r.feed.permits, r.feed.rejects) == ("cp1252", 3, 2, [])
    row, _ = stored(demo, "L736_2024_00015")
    assert row.type == "REGIONALE" and row.source == "regional"
    assert row.plates == (("AB123CD", True), ("CD456EF", False))
    assert row.valid_from == at("2024-03-01T00:00:00+01:00")
    assert row.valid_to == at("2029-03-01T00:00:00+01:00")  # a bare end date: the whole day
    second, _ = stored(demo, "G224_2025_00003")
    assert second.valid_from == at("2025-01-10T08:30:00+01:00")

    settings, rules = demo
    live = publish_permits(settings, rules, [])
    checker = Checker(
        rules,
        review_confidence=0.6,
        max_clock_skew_s=300,
        index_max_age_s=10**10,
        max_transit_age_s=10**10,
        max_delivery_delay_s=10**10,
    )
    gate = rules.gates["PD-03"]  # pedestrian area: the circuit's type covers it
    v = checker.check(live, normalise("AB123CD"), at("2026-06-01T10:00:00+02:00"), gate, 0.9, NOW)
    assert v.verdict == "allowed" and set(v.permits) == {"L736_2024_00015", "G224_2025_00003"}
    v = checker.check(live, normalise("CD456EF"), at("2026-06-01T10:00:00+02:00"), gate, 0.9, NOW)
    assert v.verdict == "allowed"  # the circuit does not restrict to the primary plate


def test_a_renewal_adds_a_period_keeping_the_number_and_the_history(
    demo: tuple[Settings, Rules],
) -> None:
    sync(demo, "vivipass", regional(*GOOD))
    renewed = [
        GOOD[0].replace("01/03/2024;28/02/2029", "01/03/2029;28/02/2034"),
        GOOD[1].replace("01/03/2024;28/02/2029", "01/03/2029;28/02/2034"),
        GOOD[2],
    ]
    r = sync(demo, "vivipass", regional(*renewed))
    assert (r.changed, r.closed) == (1, 0)
    row, history = stored(demo, "L736_2024_00015")
    first = (at("2024-03-01T00:00:00+01:00"), at("2029-03-01T00:00:00+01:00"))
    second = (at("2029-03-01T00:00:00+01:00"), at("2034-03-01T00:00:00+01:00"))
    assert spans(row) == (first, second)  # the period being renewed stays until it ends
    assert [spans(old) for _, old in history] == [(first,)]
    # Sent again, the renewal changes nothing; an export from before it does not undo it.
    assert sync(demo, "vivipass", regional(*renewed)).changed == 0
    assert sync(demo, "vivipass", regional(*GOOD)).changed == 0
    assert spans(stored(demo, "L736_2024_00015")[0]) == (first, second)


def test_a_duplicate_revokes_the_pass_it_replaces(demo: tuple[Settings, Rules]) -> None:
    sync(demo, "vivipass", regional(*GOOD))
    lost = GOOD[2]
    dup = "G224_2026_00101;G224;AB123CD;S;DISABILI;15/11/2026;10/01/2027;duplicato;;G224_2025_00003"
    r = sync(demo, "vivipass", regional(GOOD[0], GOOD[1], lost, dup))
    assert r.replaced == 1 and r.feed.rejects == []
    old, _ = stored(demo, "G224_2025_00003")
    assert old.valid_to == at("2026-11-15T00:00:00+01:00")  # ended where the duplicate starts
    new, _ = stored(demo, "G224_2026_00101")
    assert new.valid_to == at("2027-01-11T00:00:00+01:00")


def test_a_revoked_pass_ends_at_its_revocation(demo: tuple[Settings, Rules]) -> None:
    row = "L736_2024_00015;L736;AB123CD;S;DISABILI;01/03/2024;28/02/2029;revocato;30/06/2026;"
    assert sync(demo, "vivipass", regional(row)).feed.rejects == []
    permit, _ = stored(demo, "L736_2024_00015")
    assert permit.valid_to == at("2026-06-30T00:00:00+02:00")


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("L736-2024-15;L736;AB123CD;S;DISABILI;01/03/2024;28/02/2029;attivo;;", "numero_pass"),
        ("L736_2024_00016;L736;AB123CD;S;DISABILI;01/03/2024;28/02/2023;attivo;;", "fine"),
        ("L736_2024_00017;Z999;AB123CD;S;DISABILI;01/03/2024;28/02/2029;attivo;;", "comune"),
        ("L736_2024_00018;L736;AB123CD;S;RESIDENTI;01/03/2024;28/02/2029;attivo;;", "tipo_pass"),
        ("L736_2024_00019;L736;AB123CD;S;DISABILI;31/02/2024;28/02/2029;attivo;;", "inizio"),
        ("L736_2024_00020;L736;AB123CD;X;DISABILI;01/03/2024;28/02/2029;attivo;;", "principale"),
        ("L736_2024_00021;L736;AB123CD;S;DISABILI;01/03/2024;28/02/2029;revocato;;", "data_revoca"),
        (
            "L736_2024_00022;L736;AB123CD;S;DISABILI;01/03/2024;28/02/2029;duplicato;;",
            "pass_precedente",
        ),
        ("L736_2024_00023;L736;--;S;DISABILI;01/03/2024;28/02/2029;attivo;;", "targa"),
        ("L736_2024_00024;L736;AB123CD;S;DISABILI;01/03/2024;attivo;;", "row"),
        ("L736_2024_00025;L736;AB123CD;S;DISABILI;01/03/2024;28/02/2029;attivo;;;x", "row"),
        ("L736_2024_00026;L736;AB123CD", "row"),  # cut short
        # `principale` is S or N (empty: S), nothing else.
        ("L736_2024_00027;L736;AB123CD;si;DISABILI;01/03/2024;28/02/2029;attivo;;", "principale"),
        ("L736_2024_00028;L736;AB123CD;Y;DISABILI;01/03/2024;28/02/2029;attivo;;", "principale"),
        ("L736_2024_00029;L736;AB123CD;no;DISABILI;01/03/2024;28/02/2029;attivo;;", "principale"),
    ],
)
def test_bad_rows_are_rejected_with_line_and_reason(
    demo: tuple[Settings, Rules], row: str, field: str
) -> None:
    r = sync(demo, "vivipass", regional(GOOD[0], row, GOOD[2]))
    assert [(j.line, j.field) for j in r.feed.rejects] == [(3, field)]
    assert r.feed.permits == 2  # the good passes are synced all the same


def test_duplicate_pass_rows_that_disagree_reject_the_pass(demo: tuple[Settings, Rules]) -> None:
    clash = GOOD[1].replace("28/02/2029", "28/02/2030")  # same pass, other end date
    r = sync(demo, "vivipass", regional(GOOD[0], clash, GOOD[2]))
    assert [(j.line, j.key) for j in r.feed.rejects] == [(3, "L736_2024_00015")]
    assert stored(demo, "L736_2024_00015")[0] is None  # half a pass is a wrong pass


@pytest.mark.parametrize(
    "data",
    [
        regional(*GOOD)[:-30],  # cut mid-row, as a download that stopped
        regional(*GOOD)[:-2],  # the last line without its line break
        b"\x00\x01" * 20,
        b"numero_pass,comune,targa\nL736_2024_00015,L736,AB123CD\n",  # not the circuit's format
        b"",
    ],
)
def test_a_truncated_or_malformed_file_changes_nothing(
    demo: tuple[Settings, Rules], data: bytes
) -> None:
    sync(demo, "vivipass", regional(*GOOD))
    before = PermitDB(demo[0].storage.database_path).revision
    with pytest.raises(FeedFileError):
        sync(demo, "vivipass", data)
    assert PermitDB(demo[0].storage.database_path).revision == before


def test_missing_rows_are_closed_and_a_large_shrink_is_held(demo: tuple[Settings, Rules]) -> None:
    many = [
        f"L736_2024_{i:05d};L736;AB{i:03d}CD;S;DISABILI;01/03/2024;;attivo;;" for i in range(100)
    ]
    sync(demo, "vivipass", regional(*many))
    r = sync(demo, "vivipass", regional(*many[:-3]))  # 3 % gone: closed, not deleted
    assert r.closed == 3
    closed, history = stored(demo, "L736_2024_00099")
    assert closed.valid_to == NOW and history[-1][1].valid_to is None
    db = PermitDB(demo[0].storage.database_path)
    before = db.revision
    with pytest.raises(SyncHeld, match="would close 47 of 97"):
        sync(demo, "vivipass", regional(*many[:50]))  # a truncated export at a row boundary
    assert PermitDB(demo[0].storage.database_path).revision == before
    assert sync(demo, "vivipass", regional(*many[:50]), accept_shrink=True).closed == 47


def test_a_rejected_row_does_not_close_its_permit(demo: tuple[Settings, Rules]) -> None:
    sync(demo, "vivipass", regional(*GOOD))
    broken = GOOD[2].replace("10/01/2027", "10/13/2027")
    r = sync(demo, "vivipass", regional(GOOD[0], GOOD[1], broken))
    assert r.closed == 0 and len(r.feed.rejects) == 1
    assert stored(demo, "G224_2025_00003")[0].valid_to == at("2027-01-11T00:00:00+01:00")


def test_cude_primary_secondary_and_a_badge_with_three_plates(demo: tuple[Settings, Rules]) -> None:
    r = sync(
        demo,
        "cude",
        cude(
            "CUDE0001;FA001CU;P;01/01/2025;01/01/2030;",
            "CUDE0001;FA002CU;S;01/01/2025;01/01/2030;",
            "CUDE0002;GA001CU;P;01/01/2025;;",
            "CUDE0002;GA002CU;S;01/01/2025;;",
            "CUDE0002;GA003CU;S;01/01/2025;;",
            "CUDE0003;HA001CU;S;01/01/2025;;",
            "CUDE0004;JA001CU;P;01/01/2025;01/01/2030;15/09/2026",
            "CUDE0006;LA001CU;P;01/01/2025",  # cut short (a short last row: a cut file)
            "CUDE0005;KA001CU;principale;01/01/2025;;",  # P or S, nothing else
        ),
    )
    assert sorted((j.line, j.key, j.field) for j in r.feed.rejects) == [
        (4, "CUDE0002", "targa"),
        (5, "CUDE0002", "targa"),
        (6, "CUDE0002", "targa"),
        (7, "CUDE0003", "tipo_targa"),
        (9, "CUDE0006", "row"),
        (10, "CUDE0005", "tipo_targa"),
    ]
    badge, _ = stored(demo, "CUDE0001")
    assert badge.source == "cude" and badge.plates == (("FA001CU", True), ("FA002CU", False))
    assert stored(demo, "CUDE0004")[0].valid_to == at("2026-09-15T00:00:00+02:00")

    settings, rules = demo
    live = publish_permits(settings, rules, [])
    checker = Checker(
        rules,
        review_confidence=0.6,
        max_clock_skew_s=300,
        index_max_age_s=10**10,
        max_transit_age_s=10**10,
        max_delivery_delay_s=10**10,
    )
    gate = rules.gates["PD-03"]
    instant = at("2026-06-01T10:00:00+02:00")
    assert checker.check(live, normalise("FA001CU"), instant, gate, 0.9, NOW).verdict == "allowed"
    v = checker.check(live, normalise("FA002CU"), instant, gate, 0.9, NOW)
    assert (v.verdict, v.reason) == ("pending", "not_primary_plate")


def test_cli_sync_reports_and_writes_rejects(
    demo: tuple[Settings, Rules],
    tmp_path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
    capsys,
) -> None:
    from varco.cli import main

    settings, _ = demo
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    (feeds / "vivipass.csv").write_bytes(regional(GOOD[0], GOOD[1], "bad;row", GOOD[2]))
    monkeypatch.setenv("VARCO_DATA_DIR", str(settings.storage.data_dir))
    config = settings.config_path
    assert main(["--config", str(config), "sync", "vivipass"]) == 1  # some rows rejected
    out = capsys.readouterr()
    assert "vivipass: 4 rows (cp1252), 2 permits, 2 changed" in out.out, out
    assert "line 4 bad: row:" in out.out
    reports = list((settings.storage.data_dir / "rejects").glob("vivipass-*.rejects.csv"))
    assert len(reports) == 1 and "bad" in reports[0].read_text()
    assert main(["--config", str(config), "sync", "cude"]) == 2  # no such file: nothing changed
    assert main(["--config", str(config), "sync", "nope"]) == 2
    assert msgspec.structs.asdict(settings.sources["cude"])["type"] == "CUDE"


def test_a_pass_number_listed_twice_for_one_plate_is_rejected(demo: tuple[Settings, Rules]) -> None:
    r = sync(demo, "vivipass", regional(GOOD[0], GOOD[1], GOOD[0], GOOD[2]))
    assert [(j.line, j.key, j.field) for j in r.feed.rejects] == [(4, "L736_2024_00015", "targa")]
    assert stored(demo, "L736_2024_00015")[0] is None  # the pass is wrong as a whole
    assert stored(demo, "G224_2025_00003")[0] is not None


def two_regional_sources(tmp_path: Path) -> tuple[Settings, Rules]:
    """The demo configuration with two regional CSV sources, `east` and `west`."""
    config = tmp_path / "city.toml"
    config.write_text(
        DEMO_CONFIG.read_text(encoding="utf-8")
        + '[sources.east]\nkind = "regional_csv"\npath = "east.csv"\n'
        + '[sources.west]\nkind = "regional_csv"\npath = "west.csv"\n',
        encoding="utf-8",
    )
    return load_config(config, {"VARCO_DATA_DIR": str(tmp_path / "data")})


def test_two_regional_sources_close_only_what_each_brought(tmp_path: Path) -> None:
    """Two exports of regional passes (two circuits, or one circuit's CSV and feed): each
    closes the passes it no longer lists, never the other's."""
    settings, rules = two_regional_sources(tmp_path)
    east, west = GOOD[0], GOOD[2]
    with PermitDB(settings.storage.database_path) as db:
        for name, row in (("east", east), ("west", west), ("east", east)):
            r = sync_source(
                db, rules, settings, settings.sources[name], data=regional(row), now=NOW
            )
            assert r.closed == 0, name
        assert {p.feed for p in (db.get("L736_2024_00015"), db.get("G224_2025_00003"))} == {
            "east",
            "west",
        }
        assert db.get("G224_2025_00003").valid_to == at("2027-01-11T00:00:00+01:00")  # type: ignore[union-attr]


def test_passes_from_before_feeds_were_recorded_close_only_with_one_feed(tmp_path: Path) -> None:
    """A pass written before schema 4 names no feed: with two regional feeds configured
    neither closes it (it may be the other's); with one, that feed's export is complete."""
    settings, rules = two_regional_sources(tmp_path)
    east, west = GOOD[0], GOOD[2]
    with PermitDB(settings.storage.database_path) as db:
        sync_source(db, rules, settings, settings.sources["east"], data=regional(east), now=NOW)
        with db.conn:  # as the migration leaves a pass written before the column existed
            db.conn.execute("UPDATE permits SET feed = ''")
        r = sync_source(db, rules, settings, settings.sources["west"], data=regional(west), now=NOW)
        assert r.closed == 0
        assert db.get("L736_2024_00015").valid_to != NOW  # type: ignore[union-attr]

        only_west = with_changes(settings, sources={"west": settings.sources["west"]})
        r = sync_source(
            db,
            rules,
            only_west,
            only_west.sources["west"],
            data=regional(west),
            now=NOW + 60,
            accept_shrink=True,
        )
        assert r.closed == 1
        assert db.get("L736_2024_00015").valid_to == NOW + 60  # type: ignore[union-attr]


def test_feed_rejects_file_runs_no_formula(demo: tuple[Settings, Rules], tmp_path: Path) -> None:
    """A pass number is whatever the feed sent: the rejects file holds it as text a
    spreadsheet shows (csvcells.py)."""
    import csv

    from loader.sync import write_rejects

    r = sync(demo, "vivipass", regional(GOOD[0], "=cmd|' /C calc'!A0;L736;AB123CD;S", GOOD[2]))
    path = write_rejects(r.feed, tmp_path / "rejects")
    assert path is not None
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    assert rows[1][:2] == ["3", "'=cmd|' /C calc'!A0"]
