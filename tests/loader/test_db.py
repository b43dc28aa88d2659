"""The permit database, on SQLite and on PostgreSQL alike: round trips, revisions, history,
the change feed (which must never skip a change, even with concurrent writers), byte-order
index rows, schema versions and `varco migrate`.

The PostgreSQL cases use a throwaway database on $VARCO_TEST_PG_URL (default: the local
server, user postgres) made for this test session, one schema per test, and are skipped,
saying why, when no server answers.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import psycopg
import pytest

import loader.store
from enforcement.config.load import ConfigError, load_config
from loader.database import open_db
from loader.postgres import PgPermitDB, describe
from loader.sqlite import SQLITE_MIGRATIONS, PermitDB
from loader.store import SCHEMA_VERSION, PermitRow, PermitStore, SchemaError
from varco.cli import main as cli

from ..conftest import DEMO_CONFIG
from .test_import import GOOD

Opener = Callable[[], PermitStore]


def permit(pid: str, valid_to: int | None = 2_000_000_000, plates: tuple[str, ...] = ("AB123CD",),
           type_: str = "1", zones: tuple[str, ...] = ()) -> PermitRow:
    return PermitRow(pid, type_, 1_700_000_000, valid_to, zones, "municipal",
                     tuple((p, i == 0) for i, p in enumerate(plates)))


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a new connection to one (migrated) permit database of the backend."""
    if request.param == "sqlite":
        path = tmp_path / "permits.sqlite"
        return lambda: PermitDB(path)
    url = request.getfixturevalue("pg_url")
    with PgPermitDB(url, check_schema=False) as db:
        db.migrate()
    return lambda: PgPermitDB(url)


def test_round_trip(open_store: Opener) -> None:
    cude = permit("CUDE-1", None, ("FA002CU", "FA001CU"), "CUDE")  # given unsorted
    plain = permit("PD-1", zones=("ZTL", "PEDONALE"))
    with open_store() as db:
        assert (db.revision, db.count(), db.get("PD-1")) == (0, 0, None)
        assert db.upsert([cude, plain]) == 2
        assert (db.revision, db.count()) == (2, 2)
        assert db.get("PD-1") == plain
        got = db.get("CUDE-1")
        assert got is not None and got.valid_to is None
        assert got.plates == (("FA001CU", False), ("FA002CU", True))  # sorted
        assert db.history("PD-1") == []
    with open_store() as other:  # committed, seen by another connection
        assert other.get("PD-1") == plain


def test_identical_upsert_is_a_no_op(open_store: Opener) -> None:
    p = permit("PD-1", plates=("AB123CD", "EF456GH"))
    with open_store() as db:
        assert db.upsert([p]) == 1
        assert db.upsert([p]) == 0
        # Plates in another order are the same permit: still nothing to do.
        assert db.upsert([msgspec.structs.replace(p, plates=p.plates[::-1])]) == 0
        assert db.upsert_one(p) == 1  # its existing revision
        assert db.revision == 1
        assert db.history("PD-1") == [] and db.changes_since(1) == []


def test_each_change_takes_the_next_revision(open_store: Opener) -> None:
    with open_store() as db:
        db.upsert([permit("A"), permit("B"), permit("C")])
        assert db.upsert_one(permit("B", valid_to=1_900_000_000)) == 4
        assert db.upsert_one(permit("D")) == 5
        assert db.revision == 5
        assert [(r, p.permit_id) for r, p in db.changes_since(0)] == [
            (1, "A"), (3, "C"), (4, "B"), (5, "D")]  # fmt: skip


def test_history_keeps_the_old_end_of_a_revoked_permit(open_store: Opener) -> None:
    original = permit("PD-1", valid_to=2_000_000_000)
    revoked = permit("PD-1", valid_to=1_750_000_000)  # revocation: the end moves earlier
    replated = permit("PD-1", valid_to=1_750_000_000, plates=("ZZ999ZZ",))
    with open_store() as db:
        db.upsert([original, permit("OTHER")])
        db.upsert([revoked])
        db.upsert([revoked])  # unchanged: no history
        assert db.upsert_one(replated) == 4
        assert db.history("PD-1") == [(1, original), (3, revoked)]
        assert db.get("PD-1") == replated
        assert db.history("OTHER") == [] and db.history("NOPE") == []


def test_changes_since_by_revision_with_a_limit(open_store: Opener) -> None:
    with open_store() as db:
        db.upsert([permit(f"P{i}") for i in range(6)])  # revisions 1-6
        db.upsert([permit("P1", valid_to=1), permit("P4", valid_to=1)])  # 7, 8
        db.upsert_one(permit("P1", valid_to=2))  # 9: P1 is listed once, as its latest
        got = db.changes_since(0)
        assert [(r, p.permit_id) for r, p in got] == [
            (1, "P0"), (3, "P2"), (4, "P3"), (6, "P5"), (8, "P4"), (9, "P1")]  # fmt: skip
        assert got[-1][1] == permit("P1", valid_to=2)
        assert [r for r, _ in db.changes_since(3, limit=2)] == [4, 6]
        assert [r for r, _ in db.changes_since(6, limit=2)] == [8, 9]
        assert db.changes_since(9) == [] and db.changes_since(100) == []
        with pytest.raises(ValueError, match="limit"):
            db.changes_since(0, limit=0)


def test_index_rows_in_byte_order(open_store: Opener) -> None:
    ids = ["b", "a", "B", "_", "é", "Z", "aa", "a-1", "A", "~", "É", "0", "a b"]
    with open_store() as db:
        db.upsert([permit(pid, plates=("ZZ999ZZ", "AA000AA")) for pid in ids])
        db.upsert([permit(pid, valid_to=end, plates=("ZZ999ZZ", "AA000AA"))
                   for pid, end in [("ENDED", 999), ("OPEN", None)]])  # fmt: skip
        rows = list(db.index_rows(1000))
    expected = sorted([*ids, "OPEN"], key=lambda s: s.encode())
    assert expected[:4] == ["0", "A", "B", "OPEN"] and expected[-3:] == ["~", "É", "é"]
    assert [r[0] for r in rows[::2]] == expected
    assert [r[7] for r in rows] == ["AA000AA", "ZZ999ZZ"] * len(expected)
    assert rows[0] == ("0", 1_700_000_000, 2_000_000_000, "1", "", "municipal", False, "AA000AA")
    assert {r[0]: r[2] for r in rows}["OPEN"] is None


def test_bulk_insert_new(open_store: Opener) -> None:
    permits = [permit(f"P{i:03d}", plates=(f"AB{i:03d}CD",)) for i in range(120)]
    with open_store() as db:
        db.upsert([permit("FIRST")])
        assert db.bulk_insert_new(iter(permits), batch=50) == 120
        assert (db.revision, db.count()) == (121, 121)
        assert db.get("P007") == permits[7]
        assert db.upsert(permits) == 0  # stored exactly as given
        assert db.changes_since(120) == [(121, permits[-1])]


def test_upsert_in_chunks(open_store: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored versions are fetched a chunk at a time; a permit listed twice, within a chunk
    or across chunks, ends up as its last version."""
    monkeypatch.setattr(loader.store, "UPSERT_CHUNK", 3)
    v = {pid: permit(pid) for pid in "ABCDEFG"}
    a2, b2 = permit("A", valid_to=5), permit("B", valid_to=6)
    with open_store() as db:
        db.upsert([v["C"], v["D"]])  # revisions 1, 2
        # chunks: [A B A2] [C D B2] [E F G]; A and A2 count once, C and D are unchanged
        assert db.upsert([v["A"], v["B"], a2, v["C"], v["D"], b2, v["E"], v["F"], v["G"]]) == 6
        assert db.get("A") == a2 and db.get("B") == b2
        # A is numbered at its last place in the first chunk, after B.
        assert [(r, p.permit_id) for r, p in db.changes_since(2)] == [
            (4, "A"), (5, "B"), (6, "E"), (7, "F"), (8, "G")]  # fmt: skip
        assert db.history("B") == [(3, v["B"])]  # B's first version within the same upsert
        assert db.upsert(v[pid] for pid in "ABCDEFG") == 2  # A and B back; from a generator


def _transaction_held_open(db: PermitStore, first: PermitRow, inside: threading.Event,
                           release: threading.Event) -> None:  # fmt: skip
    """Upsert `first`, then keep the transaction open until `release`."""

    def permits() -> Iterator[PermitRow]:
        yield first
        inside.set()
        assert release.wait(20)

    db.upsert(permits())


def test_a_later_writer_waits_for_the_earlier_commit(open_store: Opener) -> None:
    """Writer A holds its transaction open; writer B cannot even take a revision until A
    has committed, so revisions become visible in order (A before B)."""
    inside, release = threading.Event(), threading.Event()

    def writer_a() -> None:
        with open_store() as db:
            _transaction_held_open(db, permit("A"), inside, release)

    def writer_b() -> int:
        with open_store() as db:
            return db.upsert_one(permit("B"))

    with ThreadPoolExecutor(2) as pool:
        try:
            a = pool.submit(writer_a)
            assert inside.wait(20)
            b = pool.submit(writer_b)
            time.sleep(0.3)
            assert not b.done()  # waiting for A's commit
            with open_store() as tail:
                assert tail.changes_since(0) == []  # nothing committed yet
        finally:
            release.set()
        a.result(20)
        assert b.result(20) == 2
    with open_store() as db:
        assert [(r, p.permit_id) for r, p in db.changes_since(0)] == [(1, "A"), (2, "B")]


def test_concurrent_writers_never_hide_a_change_from_the_tailer(open_store: Opener) -> None:
    """Writers upsert overlapping permits in transactions that sleep while open; a tailer
    polls changes_since(last seen) meanwhile. It must end up with every permit's final
    version: a change committed after a higher revision was seen would be lost to it."""
    ids = [f"P{i:02d}" for i in range(12)]
    writers, rounds = 4, 15
    finished = threading.Event()

    def write(w: int) -> int:
        rng = random.Random(w)
        changed = 0
        with open_store() as db:
            for r in range(rounds):
                batch = [permit(pid, valid_to=2_000_000_000 + w * 1000 + r)
                         for pid in rng.sample(ids, rng.randint(1, 4))]  # fmt: skip

                def slowly(batch: list[PermitRow] = batch) -> Iterator[PermitRow]:
                    for p in batch:  # consumed inside the write transaction
                        time.sleep(rng.uniform(0, 0.004))
                        yield p
                    time.sleep(rng.uniform(0, 0.004))

                changed += db.upsert(slowly())
        return changed

    def tail() -> tuple[dict[str, tuple[int, PermitRow]], list[int]]:
        seen: dict[str, tuple[int, PermitRow]] = {}
        revisions: list[int] = []
        last = 0
        with open_store() as db:
            while True:
                done = finished.is_set()  # before polling: then this poll sees every write
                batch = db.changes_since(last, limit=5)
                for rev, p in batch:
                    revisions.append(rev)
                    seen[p.permit_id] = (rev, p)
                if batch:
                    last = batch[-1][0]
                elif done:
                    return seen, revisions
                else:
                    time.sleep(0.001)

    with ThreadPoolExecutor(writers + 1) as pool:
        tailer = pool.submit(tail)
        try:
            changed = sum(f.result(60) for f in [pool.submit(write, w) for w in range(writers)])
        finally:
            finished.set()
        seen, revisions = tailer.result(60)
    assert revisions == sorted(set(revisions))  # increasing, never repeated
    with open_store() as db:
        final = {p.permit_id: (rev, p) for rev, p in db.changes_since(0, limit=1000)}
        revision = db.revision
    assert seen == final  # no change hidden from the tailer
    assert revision == changed  # one revision per change, no gaps


def test_a_sequence_would_skip_a_late_commit(pg_url: str) -> None:
    """Why revisions come from a locked counter row, not a sequence: with a sequence, a
    transaction that took a revision early and commits late is never reported."""
    with psycopg.connect(pg_url, autocommit=True) as setup:
        setup.execute("CREATE SEQUENCE naive_revision")
        setup.execute("CREATE TABLE naive (permit_id text, revision bigint)")
    with (psycopg.connect(pg_url) as a, psycopg.connect(pg_url) as b,
          psycopg.connect(pg_url, autocommit=True) as tailer):  # fmt: skip
        a.execute("INSERT INTO naive VALUES ('A', nextval('naive_revision'))")  # takes 1
        b.execute("INSERT INTO naive VALUES ('B', nextval('naive_revision'))")  # takes 2
        b.commit()
        poll = "SELECT permit_id, revision FROM naive WHERE revision > %s ORDER BY revision"
        assert tailer.execute(poll, (0,)).fetchall() == [("B", 2)]  # last seen: 2
        a.commit()
        assert tailer.execute(poll, (2,)).fetchall() == []  # A (revision 1) is lost


def test_clear_keeps_the_revision(open_store: Opener) -> None:
    with open_store() as db:
        db.upsert([permit("A"), permit("B")])
        db.upsert([permit("A", valid_to=1)])
        db.clear()
        assert (db.count(), db.revision, db.history("A")) == (0, 3, [])
        assert db.bulk_insert_new([permit("A")]) == 1
        assert db.changes_since(0) == [(4, permit("A"))]


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
        assert db.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                               ).fetchone() == (SCHEMA_VERSION,)  # fmt: skip
        old = db.get("OLD")
        assert old == PermitRow("OLD", "1", 0, 10, (), "municipal", (("AB123CD", True),))
        assert db.upsert_one(permit("OLD")) == 8
        assert db.history("OLD") == [(7, old)]
        assert db.migrate() == SCHEMA_VERSION  # idempotent
        db.conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match="version 99, newer than this Varco's 2: upgrade"):
        PermitDB(path)


def test_postgresql_schema_versions(pg_url: str) -> None:
    with pytest.raises(SchemaError, match="no Varco permit schema: run `varco migrate`"):
        PgPermitDB(pg_url)
    with PgPermitDB(pg_url, check_schema=False) as db:
        assert db.migrate() == SCHEMA_VERSION
        assert db.migrate() == SCHEMA_VERSION  # idempotent
    with PgPermitDB(pg_url) as db:
        db.upsert([permit("A")])
        # Back to version 1 (no history table), as a database made by an older Varco.
        db.conn.execute("DROP TABLE permit_history")
        db.conn.execute("UPDATE meta SET value = 1 WHERE key = 'schema_version'")
    with pytest.raises(SchemaError, match="version 1, this Varco needs 2: run `varco migrate`"):
        PgPermitDB(pg_url)
    with PgPermitDB(pg_url, check_schema=False) as db:
        db.migrate()
    with PgPermitDB(pg_url) as db:
        assert db.get("A") == permit("A")
        db.upsert([permit("A", valid_to=1)])
        assert db.history("A") == [(1, permit("A"))]
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


def test_config_database_url(tmp_path: Path) -> None:
    config = tmp_path / "city.toml"
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    config.write_text(text + '\n[database]\nurl = "postgresql://varco@db.example/varco"\n')
    settings, _ = load_config(config, {})
    assert settings.database_url == "postgresql://varco@db.example/varco"
    settings, _ = load_config(config, {"DATABASE_URL": "postgresql://other@db2/varco"})
    assert settings.database_url == "postgresql://other@db2/varco"  # the environment wins
    with pytest.raises(ConfigError, match=r"DATABASE_URL \(environment\): not a PostgreSQL URL"):
        load_config(config, {"DATABASE_URL": "sqlite:///x.db"})
    config.write_text(text + '\n[database]\nurl = "mysql://u:secret@h/d"\n')
    with pytest.raises(ConfigError, match=r"database\.url: not a PostgreSQL URL") as exc:
        load_config(config, {})
    assert "secret" not in str(exc.value)


def test_describe_hides_the_password() -> None:
    assert describe("postgresql://varco:s3cret@db:5433/permits?sslmode=require") == (
        "postgresql://varco@db:5433/permits")
    with pytest.raises(loader.store.DatabaseError, match="cannot connect") as exc:
        PgPermitDB("postgresql://varco:s3cret@127.0.0.1:1/permits?connect_timeout=2")
    assert "s3cret" not in str(exc.value)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_cli_migrate_and_import(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                                monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
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
