"""CSV import: idempotent upserts, rejects with line and reason, the shrink guard, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enforcement.config.settings import Settings
from enforcement.core.index import IndexMeta, build_index
from enforcement.core.rules import Rules
from loader.importer import ImportFileError, import_csv
from loader.rebuild import ShrinkRefused, publish
from loader.sqlite import PermitDB
from varco.cli import main as cli

from ..support.common import DEMO_CONFIG, at
from ..support.store import GOOD, HEADER


def write(tmp_path: Path, text: str, name: str = "permits.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_import_and_reimport(demo: tuple[Settings, Rules], tmp_path: Path) -> None:
    settings, rules = demo
    path = write(tmp_path, GOOD)
    with PermitDB(settings.storage.database_path) as db:
        first = import_csv(path, rules, db)
        assert (first.rows, first.permits, first.changed, first.rejects) == (5, 4, 4, [])
        assert first.revision == 4
        again = import_csv(path, rules, db)
        assert (again.changed, again.revision) == (0, 4)  # idempotent
        cude = db.get("CUDE-9")
        assert cude is not None and cude.plates == (("FA001CU", True), ("FA002CU", False))
        pd2 = db.get("PD-2")
        assert pd2 is not None
        assert pd2.plates == (("EF456GH", True),)  # normalised; empty primary = true
        assert pd2.valid_from == at("2026-03-01T00:00:00+01:00")  # a date: local midnight
        cude_from = at("2025-06-01T08:00:00+02:00")  # naive: Europe/Rome (summer time)
        assert cude.valid_from == cude_from
        assert db.get("PD-1").valid_to is None  # type: ignore[union-attr]
        # Changing one row raises that permit's revision only.
        write(tmp_path, GOOD.replace("PD-1,AB123CD,1,2026-01-01", "PD-1,AB123CD,2,2026-01-01"))
        changed = import_csv(path, rules, db)
        assert (changed.changed, changed.revision) == (1, 5)
        rev = dict(db.conn.execute("SELECT permit_id, revision FROM permits").fetchall())
        assert rev["PD-1"] == 5 and rev["PD-2"] == 2


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ("X-1,AB123CD,99,2026-01-01,,,municipal,true", "type", "unknown permit type '99'"),
        ("X-1,AB#12,1,2026-01-01,,,municipal,true", "plate", "not a plate"),
        ("X-1,unknown,1,2026-01-01,,,municipal,true", "plate", "not a plate"),
        ("X-1,AB123CD,3,2026-05-01,2026-04-01,,municipal,true", "valid_to", "after valid_from"),
        ("X-1,AB123CD,1,01/05/2026,,,municipal,true", "valid_from", "ISO 8601"),
        (
            "X-1,AB123CD,ONLINE,2026-05-01T10:00:00+02:00,2026-05-01T12:00:01+02:00,,online,true",
            "valid_to",
            "maximum of 2h",
        ),
        (
            "X-1,AB123CD,ONLINE,2026-05-01T10:00:00+02:00,,,online,true",
            "valid_to",
            "an end is required",
        ),
        ("X-1,AB123CD,TEMP,2026-01-31,2026-08-01,,municipal,true", "valid_to", "maximum of 6mo"),
        ("X-1,AB123CD,1,2026-01-01,,NOWHERE,municipal,true", "zones", "unknown zone"),
        ("X-1,AB123CD,1,2026-01-01,,,regione,true", "source", "not one of"),
        ("X-1,AB123CD,1,2026-01-01,,,municipal,maybe", "primary", "not true or false"),
        # One documented spelling: what a "true" cut short or another tool's habit leaves
        # is refused, never read as either.
        ("X-1,AB123CD,1,2026-01-01,,,municipal,t", "primary", "not true or false"),
        ("X-1,AB123CD,1,2026-01-01,,,municipal,yes", "primary", "not true or false"),
        ("X-1,AB123CD,1,2026-01-01,,,municipal,1", "primary", "not true or false"),
        ("X-1,AB123CD,1,2026-01-01,,,municipal,sì", "primary", "not true or false"),
        # A row cut short is no permit with defaults (no valid_to would make it unlimited).
        ("X-1,AB123CD,2,2026-01-01", "row", "4 fields where the header has 8"),
        ("X-1,AB123CD,2,2026-01-01,2027-01-01,,municipal", "row", "7 fields where"),
        (",AB123CD,1,2026-01-01,,,municipal,true", "permit_id", "printable"),
        ("X-1,AB123CD,1,2026-01-01,,,municipal,true,extra", "row", "more fields"),
    ],
)
def test_rejects(
    demo: tuple[Settings, Rules], tmp_path: Path, row: str, field: str, reason: str
) -> None:
    settings, rules = demo
    path = write(tmp_path, HEADER + "OK-1,KK111KK,1,2026-01-01,,,municipal,true\n" + row + "\n")
    with PermitDB(settings.storage.database_path) as db:
        report = import_csv(path, rules, db)
        assert [(r.line, r.field) for r in report.rejects] == [(3, field)]
        assert reason in report.rejects[0].reason
        assert report.changed == 1  # the good row is imported all the same
        assert db.get("X-1") is None


def test_permit_level_rejects(demo: tuple[Settings, Rules], tmp_path: Path) -> None:
    settings, rules = demo
    text = HEADER + (
        "C-1,CA111AA,CUDE,2026-01-01,2030-01-01,,cude,true\n"
        "C-1,CA222AA,CUDE,2026-01-01,2030-01-01,,cude,false\n"
        "C-1,CA333AA,CUDE,2026-01-01,2030-01-01,,cude,false\n"  # a third plate
        "P-1,PA111AA,1,2026-01-01,,,municipal,true\n"
        "P-1,PA222AA,2,2026-01-01,,,municipal,true\n"  # disagrees with line 5
        "P-1,PA111AA,1,2026-01-01,,,municipal,true\n"  # duplicate of line 5
        "C-2,CB111AA,CUDE,2026-01-01,2030-01-01,,cude,false\n"  # no primary plate
    )
    with PermitDB(settings.storage.database_path) as db:
        report = import_csv(write(tmp_path, text), rules, db)
        got = {(r.line, r.field) for r in report.rejects}
        assert got == {(4, "plate"), (6, "permit_id"), (7, "plate"), (8, "primary")}
        c1 = db.get("C-1")
        assert c1 is not None and len(c1.plates) == 2
        assert db.get("C-2") is None


def test_missing_column_imports_nothing(demo: tuple[Settings, Rules], tmp_path: Path) -> None:
    settings, rules = demo
    path = write(tmp_path, "permit_id,plate,type,valid_from\nX,AB123CD,1,2026-01-01\n")
    with (
        PermitDB(settings.storage.database_path) as db,
        pytest.raises(ImportFileError, match="valid_to"),
    ):
        import_csv(path, rules, db)
    with PermitDB(settings.storage.database_path) as db:
        assert db.count() == 0


def test_not_utf8(demo: tuple[Settings, Rules], tmp_path: Path) -> None:
    settings, rules = demo
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "X,AB123CD,1,2026-01-01,,Città,municipal,true\n").encode("latin-1"))
    with (
        PermitDB(settings.storage.database_path) as db,
        pytest.raises(ImportFileError, match="UTF-8"),
    ):
        import_csv(path, rules, db)


def test_shrink_guard(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo

    def index(n: int):  # type: ignore[no-untyped-def]
        meta = IndexMeta(n, 0, tuple(rules.types), tuple(rules.zones))
        return build_index(
            meta,
            np.arange(1, n + 1) * 7919,
            np.zeros(n),
            np.full(n, 2**32 - 1),
            np.ones(n),
            np.arange(n),
            np.zeros(n),
            np.ones(n),
            [f"P{i}" for i in range(n)],
        )

    publish(index(100), settings.storage.snapshot_dir)
    with pytest.raises(ShrinkRefused, match="--accept-shrink"):
        publish(index(50), settings.storage.snapshot_dir)
    publish(index(95), settings.storage.snapshot_dir)  # a 5 % drop is normal churn
    publish(index(50), settings.storage.snapshot_dir, max_shrink=1.0)


def test_cli_import_writes_rejects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VARCO_DATA_DIR", str(tmp_path / "data"))
    path = write(tmp_path, GOOD + "BAD-1,AB123CD,99,2026-01-01,,,municipal,true\n")
    code = cli(["--config", str(DEMO_CONFIG), "import", str(path)])
    out = capsys.readouterr()
    assert code == 1  # imported and rebuilt; the exit code says rows were rejected
    assert "6 rows, 4 permits valid, 4 changed, 1 rows rejected" in out.out
    assert "line 7: type: unknown permit type '99'" in out.err
    rejects = (tmp_path / "permits.csv.rejects.csv").read_text().splitlines()
    assert rejects[0] == "line,permit_id,field,reason"
    assert rejects[1].startswith("7,BAD-1,type,")
    assert (tmp_path / "data" / "snapshots" / "current.vidx").exists()
    assert cli(["--config", str(DEMO_CONFIG), "import", str(tmp_path / "missing.csv")]) == 2


def test_rebuild_reports_unknown_types(
    demo: tuple[Settings, Rules], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Permits of a type the configuration dropped are left out loudly, never silently."""
    from loader.rebuild import rebuild
    from loader.store import PermitRow

    settings, rules = demo
    with PermitDB(settings.storage.database_path) as db:
        db.upsert(
            [
                PermitRow("OLD-1", "GONE", 0, None, (), "municipal", (("AB123CD", True),)),
                PermitRow("OK-1", "1", 0, None, (), "municipal", (("EF456GH", True),)),
            ]
        )
        report = rebuild(db, rules, settings.storage.snapshot_dir, 30)
    assert report.permits == 1
    assert "1 plate rows of permit type 'GONE' left out" in caplog.text


def test_rejects_file_runs_no_formula(demo: tuple[Settings, Rules], tmp_path: Path) -> None:
    """A rejected row's id is whatever the file held: written as text a spreadsheet shows
    (csvcells.py); the line number stays a number."""
    import csv

    from loader.importer import write_rejects

    settings, rules = demo
    path = write(
        tmp_path,
        GOOD + '"=HYPERLINK(""http://x.example"")",AB123CD,99,2026-01-01,,,municipal,true\n',
    )
    with PermitDB(settings.storage.database_path) as db:
        report = import_csv(path, rules, db)
    write_rejects(report, tmp_path / "rejects.csv")
    rows = list(csv.reader((tmp_path / "rejects.csv").read_text(encoding="utf-8").splitlines()))
    assert rows[1][:3] == ["7", '\'=HYPERLINK("http://x.example")', "type"]
