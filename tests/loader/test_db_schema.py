"""The permit database's schema versions and backends: SQLite and PostgreSQL upgraded by
`varco migrate` and refused when too old or too new, the backend chosen by the settings, the
password never shown, and `varco migrate` and `varco import` end to end.

The PostgreSQL cases run as in test_db.py (a throwaway database on $VARCO_TEST_PG_URL,
skipped, saying why, when no server answers).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import loader.store
from enforcement.config.load import load_config
from loader.database import open_db
from loader.postgres import PgPermitDB, describe
from loader.sqlite import SQLITE_MIGRATIONS, PermitDB
from loader.store import SCHEMA_VERSION, PermitRow, SchemaError
from varco.cli import main as cli

from ..support.common import DEMO_CONFIG
from ..support.store import GOOD, permit


def test_sqlite_upgrades_an_unversioned_database(tmp_path: Path) -> None:
    path = tmp_path / "permits.sqlite"
    with sqlite3.connect(path) as conn:  # as written before schema versions existed
        for statement in SQLITE_MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO permits VALUES ('OLD', '1', 0, 10, '', 'municipal', 7, 0)")
        conn.execute("INSERT INTO permit_plates VALUES ('OLD', 'AB123CD', 1)")
        conn.execute("UPDATE meta SET value = 7 WHERE key = 'revision'")
    conn.close()
    with PermitDB(path) as db:
        assert db.conn.execute(
            "SELECT value FROM meta WHERE key = 'schema_version'"
        ).fetchone() == (SCHEMA_VERSION,)
        old = db.get("OLD")
        assert old == PermitRow("OLD", "1", 0, 10, (), "municipal", (("AB123CD", True),))
        assert db.upsert_one(permit("OLD")) == 8
        assert db.history("OLD") == [(7, old)]
        assert db.migrate() == SCHEMA_VERSION  # idempotent
        db.conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match="version 99, newer than this Varco's 5: upgrade"):
        PermitDB(path)


def test_postgresql_schema_versions(pg_url: str) -> None:
    with pytest.raises(SchemaError, match="no Varco permit schema: run `varco migrate`"):
        PgPermitDB(pg_url)
    with PgPermitDB(pg_url, check_schema=False) as db:
        assert db.migrate() == SCHEMA_VERSION
        assert db.migrate() == SCHEMA_VERSION  # idempotent
    with PgPermitDB(pg_url) as db:
        db.upsert([permit("A")])
        # Back to version 1 (no history table, no periods), as made by an older Varco.
        db.conn.execute("DROP TABLE permit_history")
        db.conn.execute("ALTER TABLE permits DROP COLUMN periods")
        db.conn.execute("ALTER TABLE permits DROP COLUMN feed")
        db.conn.execute("DROP TABLE feed_state")
        db.conn.execute("DROP TABLE users")
        db.conn.execute("DROP TABLE permit_actions")
        db.conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match="version 1, this Varco needs 5: run `varco migrate`"):
        PgPermitDB(pg_url)
    with PgPermitDB(pg_url, check_schema=False) as db:
        db.migrate()
    with PgPermitDB(pg_url) as db:
        assert db.get("A") == permit("A")
        db.upsert([permit("A", valid_to=1)])
        assert db.history("A") == [(1, permit("A"))]
        assert db.query("SELECT count(*) FROM users") == [(0,)]  # version 5, migrated
        db.conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match="newer than this Varco's"):
        PgPermitDB(pg_url)
    with PgPermitDB(pg_url, check_schema=False) as db, pytest.raises(SchemaError):
        db.migrate()  # never downgrades


def test_open_db_picks_the_backend(tmp_path: Path, pg_url: str) -> None:
    env = {"VARCO_DATA_DIR": str(tmp_path / "data")}
    settings, _ = load_config(DEMO_CONFIG, env)
    assert settings.database_url is None
    with open_db(settings) as db:
        assert isinstance(db, PermitDB) and db.path == settings.storage.database_path
    settings, _ = load_config(DEMO_CONFIG, {**env, "DATABASE_URL": pg_url})
    assert settings.database_url == pg_url
    with pytest.raises(SchemaError, match="varco migrate"):
        open_db(settings)
    with open_db(settings, check_schema=False) as db:
        assert isinstance(db, PgPermitDB)
        assert "password" not in db.location and db.location.startswith("postgresql://")


def test_describe_hides_the_password() -> None:
    assert describe("postgresql://varco:s3cret@db:5433/permits?sslmode=require") == (
        "postgresql://varco@db:5433/permits"
    )
    with pytest.raises(loader.store.DatabaseError, match="cannot connect") as exc:
        PgPermitDB("postgresql://varco:s3cret@127.0.0.1:1/permits?connect_timeout=2")
    assert "s3cret" not in str(exc.value)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_cli_migrate_and_import(
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VARCO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    if backend == "postgresql":
        monkeypatch.setenv("DATABASE_URL", request.getfixturevalue("pg_url"))
        assert cli(["--config", str(DEMO_CONFIG), "rebuild"]) == 2  # not migrated yet
        assert "run `varco migrate`" in capsys.readouterr().err
    for _ in range(2):  # idempotent
        assert cli(["--config", str(DEMO_CONFIG), "migrate"]) == 0
        assert f"schema version {SCHEMA_VERSION}" in capsys.readouterr().out
    csv = tmp_path / "permits.csv"
    csv.write_text(GOOD, encoding="utf-8")
    assert cli(["--config", str(DEMO_CONFIG), "import", str(csv)]) == 0
    assert "4 changed" in capsys.readouterr().out
    assert (tmp_path / "data" / "snapshots" / "current.vidx").exists()
    settings, _ = load_config(DEMO_CONFIG)
    with open_db(settings) as db:
        assert (db.count(), db.revision) == (4, 4)
