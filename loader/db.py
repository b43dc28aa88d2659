"""The permit database (SQLite): permits, their plates, and one revision sequence.

Every change to a permit gives it the next revision number, and the database remembers the
highest one handed out; a snapshot records the revision it contains. SQLite has one writer at
a time, so revisions are handed out in commit order. Writing an unchanged permit is a no-op
(no new revision), which makes re-imports idempotent.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

import msgspec

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS permits (
    permit_id  TEXT PRIMARY KEY,
    type       TEXT NOT NULL,
    valid_from INTEGER NOT NULL,          -- epoch seconds, inclusive
    valid_to   INTEGER,                   -- epoch seconds, exclusive; NULL = unlimited
    zones      TEXT NOT NULL DEFAULT '',  -- space-separated zone codes; '' = the type's
    source     TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS permits_revision ON permits (revision);
CREATE TABLE IF NOT EXISTS permit_plates (
    permit_id  TEXT NOT NULL REFERENCES permits (permit_id) ON DELETE CASCADE,
    plate      TEXT NOT NULL,             -- normalised
    is_primary INTEGER NOT NULL,
    PRIMARY KEY (permit_id, plate)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS permit_plates_plate ON permit_plates (plate);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0);
"""


class PermitRow(msgspec.Struct, frozen=True, gc=False):
    """One permit as stored: validity [valid_from, valid_to) in epoch seconds."""

    permit_id: str
    type: str
    valid_from: int
    valid_to: int | None
    zones: tuple[str, ...]  # empty: the type's zones
    source: str
    plates: tuple[tuple[str, bool], ...]  # (normalised plate, primary), sorted


class PermitDB:
    """A SQLite permit database. Not thread-safe; one per thread or process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> PermitDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def revision(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()[0])

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM permits").fetchone()[0])

    def get(self, permit_id: str) -> PermitRow | None:
        row = self.conn.execute(
            "SELECT permit_id, type, valid_from, valid_to, zones, source FROM permits "
            "WHERE permit_id = ?", (permit_id,)
        ).fetchone()  # fmt: skip
        if row is None:
            return None
        plates = self.conn.execute(
            "SELECT plate, is_primary FROM permit_plates WHERE permit_id = ? ORDER BY plate",
            (permit_id,),
        ).fetchall()
        return _row(row, tuple((p, bool(f)) for p, f in plates))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction, taken at once (IMMEDIATE): revisions follow commit order."""
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        cur.execute("COMMIT")

    def upsert(self, permits: Iterable[PermitRow]) -> int:
        """Insert or replace permits in one transaction; returns how many changed.

        A permit identical to the stored one is left alone (no new revision).
        """
        changed = 0
        now = int(time.time())
        with self._transaction() as cur:
            rev = self.revision
            for p in permits:
                old = self.get(p.permit_id)
                if old == p:
                    continue
                rev += 1
                changed += 1
                cur.execute(
                    "INSERT INTO permits (permit_id, type, valid_from, valid_to, zones, source,"
                    " revision, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (permit_id) DO UPDATE SET type=excluded.type,"
                    " valid_from=excluded.valid_from, valid_to=excluded.valid_to,"
                    " zones=excluded.zones, source=excluded.source, revision=excluded.revision,"
                    " updated_at=excluded.updated_at",
                    (p.permit_id, p.type, p.valid_from, p.valid_to, " ".join(p.zones), p.source,
                     rev, now),
                )  # fmt: skip
                if old is not None:
                    cur.execute("DELETE FROM permit_plates WHERE permit_id = ?", (p.permit_id,))
                cur.executemany(
                    "INSERT INTO permit_plates (permit_id, plate, is_primary) VALUES (?, ?, ?)",
                    [(p.permit_id, plate, int(primary)) for plate, primary in p.plates],
                )
            cur.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (rev,))
        return changed

    def bulk_insert_new(self, permits: Iterable[PermitRow], batch: int = 50_000) -> int:
        """Fast path for an empty database (demo, first load): no comparison, plain inserts."""
        with self._transaction() as cur:
            rev = self.revision
            now = int(time.time())
            n = 0
            rows: list[tuple[object, ...]] = []
            plates: list[tuple[object, ...]] = []
            for p in permits:
                rev += 1
                n += 1
                rows.append((p.permit_id, p.type, p.valid_from, p.valid_to, " ".join(p.zones),
                             p.source, rev, now))  # fmt: skip
                plates.extend((p.permit_id, plate, int(pr)) for plate, pr in p.plates)
                if len(rows) >= batch:
                    self._insert(cur, rows, plates)
                    rows, plates = [], []
            self._insert(cur, rows, plates)
            cur.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (rev,))
        return n

    @staticmethod
    def _insert(
        cur: sqlite3.Cursor, rows: list[tuple[object, ...]], plates: list[tuple[object, ...]]
    ) -> None:
        cur.executemany("INSERT INTO permits VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        cur.executemany("INSERT INTO permit_plates VALUES (?, ?, ?)", plates)

    def index_rows(
        self, min_end: int
    ) -> Iterator[tuple[str, int, int | None, str, str, str, int, str]]:
        """(permit_id, valid_from, valid_to, type, zones, source, is_primary, plate) for
        every plate of every permit not ended before `min_end`."""
        yield from self.conn.execute(
            "SELECT p.permit_id, p.valid_from, p.valid_to, p.type, p.zones, p.source,"
            " pp.is_primary, pp.plate FROM permits p JOIN permit_plates pp USING (permit_id)"
            " WHERE p.valid_to IS NULL OR p.valid_to >= ?",
            (min_end,),
        )


def _row(row: tuple[object, ...], plates: tuple[tuple[str, bool], ...]) -> PermitRow:
    permit_id, type_, valid_from, valid_to, zones, source = row
    return PermitRow(str(permit_id), str(type_), int(valid_from),  # type: ignore[call-overload]
                     None if valid_to is None else int(valid_to),  # type: ignore[call-overload]
                     tuple(str(zones).split()), str(source), plates)  # fmt: skip
