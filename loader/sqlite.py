"""The permit database on SQLite: a file in the data directory, the default.

WAL mode, so readers (the loader's tail, the admin API) never wait for the writer; a write
transaction starts with BEGIN IMMEDIATE, one writer at a time, which hands out revisions in
commit order (`loader.store`). The schema migrates on open.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from .columns import PERMIT_SELECT, from_history_json, group, history_json, periods_text
from .store import (
    SCHEMA_VERSION,
    Change,
    IndexRow,
    PermitRow,
    PermitStore,
    SchemaError,
    schema_problem,
)

# At most this many ids bound in one SQLite IN (...) (SQLite allows 32,766 variables).
SQLITE_IN_CHUNK: Final = 5_000


# SQLite: statements per schema version, each idempotent (a version-1 database made before
# schema versions existed replays them harmlessly).
SQLITE_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS permits (
            permit_id  TEXT PRIMARY KEY,          -- BINARY collation: byte order
            type       TEXT NOT NULL,
            valid_from INTEGER NOT NULL,          -- epoch seconds, inclusive
            valid_to   INTEGER,                   -- epoch seconds, exclusive; NULL = unlimited
            zones      TEXT NOT NULL DEFAULT '',  -- space-separated zone codes; '' = the type's
            source     TEXT NOT NULL,
            revision   INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS permits_revision ON permits (revision)",
        """CREATE TABLE IF NOT EXISTS permit_plates (
            permit_id  TEXT NOT NULL REFERENCES permits (permit_id) ON DELETE CASCADE,
            plate      TEXT NOT NULL,             -- normalised
            is_primary INTEGER NOT NULL,
            PRIMARY KEY (permit_id, plate)
        ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS permit_plates_plate ON permit_plates (plate)",
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', 0)",
    ),
    2: (
        """CREATE TABLE IF NOT EXISTS permit_history (
            permit_id  TEXT NOT NULL,
            revision   INTEGER NOT NULL,          -- the revision this old version had
            old_row    TEXT NOT NULL,             -- the old version, JSON
            changed_at INTEGER NOT NULL,          -- epoch seconds it was replaced
            PRIMARY KEY (permit_id, revision)
        ) WITHOUT ROWID""",
    ),
    # A permit's validity periods beyond the one valid_from/valid_to hold (loader/periods.py).
    3: ("ALTER TABLE permits ADD COLUMN periods TEXT NOT NULL DEFAULT ''",),
    # Which configured feed brought a permit; each feed's last ETag.
    4: (
        "ALTER TABLE permits ADD COLUMN feed TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE IF NOT EXISTS feed_state (
            feed       TEXT PRIMARY KEY,
            etag       TEXT,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
    ),
    # People who sign in (loader/users.py); who changed a permit through the admin API, why.
    5: (
        """CREATE TABLE IF NOT EXISTS users (
            username   TEXT PRIMARY KEY,
            role       TEXT NOT NULL,
            password   TEXT NOT NULL,             -- scrypt$n$r$p$salt$hash, never logged
            disabled   INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS permit_actions (
            permit_id  TEXT NOT NULL,
            revision   INTEGER NOT NULL,          -- the revision the change produced
            at         INTEGER NOT NULL,          -- epoch seconds
            actor      TEXT NOT NULL,             -- API key id or user:<name>
            person     TEXT,
            action     TEXT NOT NULL,
            reason     TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (permit_id, revision)
        ) WITHOUT ROWID""",
    ),
}


class PermitDB(PermitStore):
    """A SQLite permit database, migrated to the current schema on open."""

    def __init__(self, path: str | Path, *, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Writers queue on the database lock (BEGIN IMMEDIATE) for up to busy_timeout s.
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout)
        try:
            self._use_wal(busy_timeout)  # readers never wait for the writer
            self.conn.execute("PRAGMA synchronous=NORMAL")
            # 64 MiB of page cache (default 2 MiB): a sync of a million permits walks indexes
            # far larger than the default; measured 20 % faster at 200 k (bench_sync).
            self.conn.execute("PRAGMA cache_size=-65536")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self.migrate()
        except BaseException:
            self.conn.close()
            raise

    def _use_wal(self, busy_timeout: float) -> None:
        """WAL is a property of the file: set once, by whichever connection comes first.
        Switching to it takes an exclusive lock for which SQLite does not wait on the busy
        timeout, so processes opening a new database together (loader, replicas) retry."""
        deadline = time.monotonic() + busy_timeout
        while True:
            try:
                if self.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                    return
                self.conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def close(self) -> None:
        self.conn.close()

    def _schema_version(self) -> int:
        if not self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone():
            return 0
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return 0 if row is None else int(row[0])

    def migrate(self) -> int:
        if self._schema_version() == SCHEMA_VERSION:
            return SCHEMA_VERSION  # the usual case, without taking the write lock
        with self._transaction():
            version = self._schema_version()  # again, under the lock: another may have done it
            if version > SCHEMA_VERSION:
                raise SchemaError(str(schema_problem(self.location, version)))
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in SQLITE_MIGRATIONS[v]:
                    self.conn.execute(statement)
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION,),
            )
        return SCHEMA_VERSION

    @property
    def revision(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()[0])

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM permits").fetchone()[0])

    def open_ids(
        self, source: str, at: int, feed: str | None = None, unclaimed: bool = True
    ) -> set[str]:
        rows = self.conn.execute(
            "SELECT permit_id FROM permits WHERE source = ? AND (valid_to IS NULL OR valid_to > ?)"
            " AND (? IS NULL OR feed = ? OR (? AND feed = ''))",
            (source, at, feed, feed, unclaimed),
        )
        return {r[0] for r in rows}

    def feed_etag(self, feed: str) -> str | None:
        row = self.conn.execute("SELECT etag FROM feed_state WHERE feed = ?", (feed,)).fetchone()
        return None if row is None else row[0]

    def set_feed_etag(self, feed: str, etag: str | None) -> None:
        with self._transaction():
            self.conn.execute(
                "INSERT INTO feed_state (feed, etag, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (feed) DO UPDATE SET etag = excluded.etag,"
                " updated_at = excluded.updated_at",
                (feed, etag, int(time.time())),
            )

    def changes_since(self, revision: int, limit: int = 10_000) -> list[tuple[int, PermitRow]]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        rows = self.conn.execute(
            "WITH c AS (SELECT * FROM permits WHERE revision > ? ORDER BY revision LIMIT ?)"
            " SELECT c.permit_id, c.type, c.valid_from, c.valid_to, c.zones, c.source,"
            " c.revision, c.periods, c.feed, pp.plate, pp.is_primary FROM c"
            " LEFT JOIN permit_plates pp USING (permit_id) ORDER BY c.revision, pp.plate",
            (revision, limit),
        ).fetchall()  # one statement: the permits and their plates as of one instant
        return list(group(rows))

    def history(self, permit_id: str) -> list[tuple[int, PermitRow]]:
        rows = self.conn.execute(
            "SELECT revision, old_row FROM permit_history WHERE permit_id = ? ORDER BY revision",
            (permit_id,),
        )
        return [(int(rev), from_history_json(text)) for rev, text in rows]

    def index_rows(self, min_end: int) -> Iterator[IndexRow]:
        # Both keys are BINARY (byte order); the plan walks the primary keys, no sort step.
        yield from self.conn.execute(
            "SELECT p.permit_id, p.valid_from, p.valid_to, p.type, p.zones, p.source,"
            " pp.is_primary, pp.plate, p.periods"
            " FROM permits p JOIN permit_plates pp USING (permit_id)"
            " WHERE p.valid_to IS NULL OR p.valid_to >= ? ORDER BY p.permit_id, pp.plate",
            (min_end,),
        )

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def clear(self) -> None:
        with self._transaction():
            for table in (
                "permit_history",
                "permit_actions",
                "permit_plates",
                "permits",
                "feed_state",
            ):
                self.conn.execute(f"DELETE FROM {table}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, taken at once (IMMEDIATE): revisions follow commit order."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[int]:
        with self._transaction():
            yield self.revision

    def _set_revision(self, revision: int) -> None:
        self.conn.execute("UPDATE meta SET value = ? WHERE key = 'revision'", (revision,))

    def _current(self, permit_ids: Sequence[str]) -> dict[str, tuple[int, PermitRow]]:
        # The ids as bound parameters, IN (?, ?, ...): 5,000 ids of a 200,000-permit database
        # in 23 ms, against 41 ms through json_each. Ids of a range where nothing is stored
        # yet (a first sync, a new source) need no lookup: one index probe says so.
        found: dict[str, tuple[int, PermitRow]] = {}
        for i in range(0, len(permit_ids), SQLITE_IN_CHUNK):
            ids = permit_ids[i : i + SQLITE_IN_CHUNK]
            if (
                len(ids) > 1
                and not self.conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM permits WHERE permit_id BETWEEN ? AND ?)",
                    (min(ids), max(ids)),
                ).fetchone()[0]
            ):
                continue  # none stored between the least and the greatest id (byte order)
            rows = self.conn.execute(
                f"{PERMIT_SELECT} WHERE p.permit_id IN ({','.join('?' * len(ids))})"
                " ORDER BY p.permit_id",
                ids,
            )
            found.update((p.permit_id, (rev, p)) for rev, p in group(rows))
        return found

    def _apply(self, changes: list[Change], now: int) -> None:
        c = self.conn
        c.executemany(
            "INSERT INTO permit_history (permit_id, revision, old_row, changed_at)"
            " VALUES (?, ?, ?, ?)",
            [
                (ch.permit.permit_id, ch.previous[0], history_json(ch.previous[1]), now)
                for ch in changes
                if ch.previous is not None
            ],
        )
        c.executemany(
            "INSERT INTO permits (permit_id, type, valid_from, valid_to, zones, source,"
            " revision, updated_at, periods, feed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (permit_id) DO UPDATE SET type=excluded.type,"
            " valid_from=excluded.valid_from, valid_to=excluded.valid_to,"
            " zones=excluded.zones, source=excluded.source, revision=excluded.revision,"
            " updated_at=excluded.updated_at, periods=excluded.periods, feed=excluded.feed",
            [
                (
                    p.permit_id,
                    p.type,
                    p.valid_from,
                    p.valid_to,
                    " ".join(p.zones),
                    p.source,
                    rev,
                    now,
                    periods_text(p),
                    p.feed,
                )
                for rev, p, _ in changes
            ],
        )
        replaced = [ch.permit.permit_id for ch in changes if ch.previous is not None]
        if replaced:
            c.execute(
                "DELETE FROM permit_plates WHERE permit_id IN (SELECT value FROM json_each(?))",
                (json.dumps(replaced),),
            )
        c.executemany(
            "INSERT INTO permit_plates (permit_id, plate, is_primary) VALUES (?, ?, ?)",
            [
                (p.permit_id, plate, int(primary))
                for _, p, _ in changes
                for plate, primary in p.plates
            ],
        )

    def _insert_new(self, permits: list[PermitRow], first_revision: int, now: int) -> None:
        self.conn.executemany(
            "INSERT INTO permits (permit_id, type, valid_from, valid_to, zones, source,"
            " revision, updated_at, periods, feed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    p.permit_id,
                    p.type,
                    p.valid_from,
                    p.valid_to,
                    " ".join(p.zones),
                    p.source,
                    rev,
                    now,
                    periods_text(p),
                    p.feed,
                )
                for rev, p in enumerate(permits, first_revision)
            ],
        )
        self.conn.executemany(
            "INSERT INTO permit_plates (permit_id, plate, is_primary) VALUES (?, ?, ?)",
            [(p.permit_id, plate, int(pr)) for p in permits for plate, pr in p.plates],
        )
