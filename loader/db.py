"""The permit database: permits, their plates, their history, and one revision counter.

Two backends share one API (`PermitStore`): SQLite (`PermitDB`, a file in the data directory,
the default) and PostgreSQL (`loader.pgdb.PgPermitDB`, when `database_url` is set);
`open_db(settings)` picks one.

Every change to a permit gives it the next revision number, and the database remembers the
highest one handed out; a snapshot records the revision it contains, and the loader daemon
tails `changes_since(last_seen)` to publish changes to replicas. Writing an unchanged permit
is a no-op (no new revision), which makes re-imports idempotent. A changed permit's previous
version goes to `permit_history`: revoking a permit moves its end earlier, and the old end
must stay on record.

Revisions are handed out in commit order, because a tailer that asks for `revision >
last_seen` skips for good any row that becomes visible after a higher revision did. A
PostgreSQL sequence loses rows that way: writer A takes 7, writer B takes 8 and commits, the
tailer reads 8 and moves on, then A commits 7, which no later poll returns. So revisions
come from one counter row (`meta.revision`): a write transaction locks it before it reads or
writes anything else, takes its revisions from it, and keeps the lock until it commits. A
writer therefore gets the counter only after every writer holding a lower revision has
committed, and a revision r becomes visible only after every revision below r. SQLite gets
the same from BEGIN IMMEDIATE (one writer at a time). Locking first also makes the no-op
comparison exact: it sees every earlier commit. The price is that writers wait for one
another, which a permit database (one 1M-row regional upsert, a few API edits) can afford;
and a rolled-back write hands out nothing, so revisions have no gaps.

`meta.schema_version` says which schema a database has and `migrate()` brings it to
SCHEMA_VERSION idempotently: 1 is the original schema, 2 adds `permit_history`.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple, Self

import msgspec

if TYPE_CHECKING:
    from enforcement.config import Settings

SCHEMA_VERSION: Final = 2
# Upserts compare a chunk of permits with their stored versions fetched in one query.
UPSERT_CHUNK: Final = 5_000
# At most this many ids bound in one SQLite IN (...) (SQLite allows 32,766 variables).
SQLITE_IN_CHUNK: Final = 5_000
BULK_CHUNK: Final = 50_000

# (permit_id, valid_from, valid_to, type, zones, source, is_primary, plate)
IndexRow = tuple[str, int, int | None, str, str, str, int, str]


class DatabaseError(Exception):
    """The permit database cannot be used as it is (unreachable, wrong schema)."""


class SchemaError(DatabaseError):
    """The database's schema is missing, older or newer than this Varco's."""


class PermitRow(msgspec.Struct, frozen=True, gc=False):
    """One permit as stored: validity [valid_from, valid_to) in epoch seconds."""

    permit_id: str
    type: str
    valid_from: int
    valid_to: int | None
    zones: tuple[str, ...]  # empty: the type's zones
    source: str
    plates: tuple[tuple[str, bool], ...]  # (normalised plate, primary), sorted


class Change(NamedTuple):
    """A permit written at `revision`; `previous` is the stored version it replaces."""

    revision: int
    permit: PermitRow
    previous: tuple[int, PermitRow] | None


class PermitStore(ABC):
    """The permit database API, whatever the backend. Not thread-safe: one per thread.

    Writes run in one transaction holding the revision counter (see the module docstring);
    reads are single statements, so each sees one consistent state.
    """

    location: str  # where the database is, for messages (never a password)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def migrate(self) -> int:
        """Create or upgrade the schema to SCHEMA_VERSION (idempotent); returns it."""

    @property
    @abstractmethod
    def revision(self) -> int:
        """The highest revision handed out (and committed)."""

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def open_ids(self, source: str, at: int) -> set[str]:
        """Ids of the permits from `source` not ended at `at` (a feed sync closes those a
        complete export no longer lists)."""

    def get(self, permit_id: str) -> PermitRow | None:
        found = self._current([permit_id]).get(permit_id)
        return None if found is None else found[1]

    def get_with_revision(self, permit_id: str) -> tuple[PermitRow, int] | None:
        """The permit and its current revision, or None."""
        found = self._current([permit_id]).get(permit_id)
        return None if found is None else (found[1], found[0])

    @abstractmethod
    def index_rows(self, min_end: int) -> Iterator[IndexRow]:
        """(permit_id, valid_from, valid_to, type, zones, source, is_primary, plate) for
        every plate of every permit not ended before `min_end`.

        Ordered by permit_id in byte order (UTF-8 bytes, which is code point order: Python's
        `sorted`), then plate, whatever the database's collation: the index builder relies
        on sorted permit ids. Consume it whole before using the database for anything else.
        """

    @abstractmethod
    def changes_since(self, revision: int, limit: int = 10_000) -> list[tuple[int, PermitRow]]:
        """(revision, current row) of every permit whose revision is above `revision`,
        by revision, at most `limit`. Poll with the highest revision seen: nothing committed
        later can carry a lower one, so no change is ever skipped (a permit changed twice
        between polls shows once, as its latest version)."""

    @abstractmethod
    def history(self, permit_id: str) -> list[tuple[int, PermitRow]]:
        """The permit's previous versions with the revision each had, oldest first (the
        current version is `get`)."""

    @abstractmethod
    def clear(self) -> None:
        """Delete every permit and its history (demo --regenerate). The revision counter
        stays, so revisions never go back; replicas do not hear of deletions."""

    def upsert(self, permits: Iterable[PermitRow]) -> int:
        """Insert or replace permits in one transaction; returns how many changed.

        A permit identical to the stored one is left alone (no new revision); a permit
        listed twice counts once, as its last version.
        """
        return self._upsert(permits)[0]

    def upsert_one(self, permit: PermitRow) -> int:
        """Upsert one permit; returns its revision after the call (its existing revision
        if it was unchanged)."""
        last = self._upsert((permit,))[1]
        assert last is not None
        return last

    def upsert_one_if(self, permit: PermitRow, expected_revision: int | None) -> int | None:
        """Write `permit` only if its stored revision is still `expected_revision` (read,
        changed, written back: a concurrent change in between must not be overwritten), or,
        with None, only if it does not exist yet (issued once, never overwritten); its
        revision after the call, or None when that no longer holds (nothing written)."""
        now = int(time.time())
        with self._writing() as revision:
            stored = self._current([permit.permit_id])
            current = stored.get(permit.permit_id)
            if (None if current is None else current[0]) != expected_revision:
                return None
            changes, revision, last = plan([permit], stored, revision)
            if changes:
                self._apply(changes, now)
                self._set_revision(revision)
        return last

    def bulk_insert_new(self, permits: Iterable[PermitRow], batch: int = BULK_CHUNK) -> int:
        """Fast path for permits not in the database (demo, first load): no comparison, no
        history, plain inserts; a permit already there fails the whole transaction."""
        n = 0
        now = int(time.time())
        with self._writing() as revision:
            for chunk in chunks(permits, batch):
                self._insert_new(chunk, revision + 1, now)
                revision += len(chunk)
                n += len(chunk)
            self._set_revision(revision)
        self._written(n)
        return n

    def _upsert(self, permits: Iterable[PermitRow]) -> tuple[int, int | None]:
        """(permits changed, the revision of the last permit given)."""
        changed, last = 0, None
        now = int(time.time())
        with self._writing() as revision:
            for chunk in chunks(permits, UPSERT_CHUNK):
                stored = self._current([p.permit_id for p in chunk])
                changes, revision, last = plan(chunk, stored, revision)
                if changes:
                    self._apply(changes, now)
                    changed += len(changes)
            self._set_revision(revision)
        self._written(changed)
        return changed, last

    # What a backend provides to the shared write paths above.

    @abstractmethod
    def _writing(self) -> contextlib.AbstractContextManager[int]:
        """A write transaction holding the revision counter; yields its value."""

    @abstractmethod
    def _set_revision(self, revision: int) -> None: ...

    @abstractmethod
    def _current(self, permit_ids: Sequence[str]) -> dict[str, tuple[int, PermitRow]]:
        """The stored (revision, version) of those of `permit_ids` that exist."""

    @abstractmethod
    def _apply(self, changes: list[Change], now: int) -> None:
        """Write changed permits (at most one change per permit), archiving the versions
        they replace."""

    @abstractmethod
    def _insert_new(self, permits: list[PermitRow], first_revision: int, now: int) -> None: ...

    def _written(self, changed: int) -> None:  # noqa: B027 (a hook, empty by default)
        """After a committed write of `changed` permits (a backend may refresh statistics)."""


def open_db(settings: Settings, *, check_schema: bool = True) -> PermitStore:
    """The configured permit database: PostgreSQL if `database_url` is set, else SQLite.

    A PostgreSQL database with an older schema raises SchemaError unless `check_schema` is
    false (`varco migrate`); SQLite migrates on open.
    """
    if settings.database_url:
        from .pgdb import PgPermitDB  # psycopg loads only where PostgreSQL is used

        return PgPermitDB(settings.database_url, check_schema=check_schema)
    return PermitDB(settings.database_path)


def chunks(items: Iterable[PermitRow], size: int) -> Iterator[list[PermitRow]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def canonical(p: PermitRow) -> PermitRow:
    """The permit as the database gives it back (sorted plates, zones split on spaces), so
    that comparing with the stored version never sees a change that is not one."""
    if not p.zones and len(p.plates) < 2:  # most permits: nothing to sort or split
        return p
    plates = tuple(sorted(p.plates))
    zones = tuple(" ".join(p.zones).split())
    if plates == p.plates and zones == p.zones:
        return p
    return msgspec.structs.replace(p, plates=plates, zones=zones)


def plan(chunk: list[PermitRow], stored: dict[str, tuple[int, PermitRow]],
         revision: int) -> tuple[list[Change], int, int]:  # fmt: skip
    """Number the permits of `chunk` that differ from their `stored` versions from
    `revision` + 1 on; returns the changes, the last revision handed out, and the revision
    of the chunk's last permit."""
    latest = {p.permit_id: p for p in chunk}
    if len(latest) < len(chunk):  # a permit listed twice: its last version, at its last position
        latest = {}
        for p in chunk:
            latest.pop(p.permit_id, None)
            latest[p.permit_id] = p
    changes: list[Change] = []
    last = revision
    for pid, p in latest.items():
        p = canonical(p)
        old = stored.get(pid)
        if old is not None and old[1] == p:
            last = old[0]
            continue
        revision += 1
        last = revision
        changes.append(Change(revision, p, old))
    return changes, revision, last


def group(rows: Iterable[Sequence[Any]]) -> Iterator[tuple[int, PermitRow]]:
    """(revision, permit) from joined rows (permit_id, type, valid_from, valid_to, zones,
    source, revision, plate, is_primary), a permit's rows adjacent; plate is NULL for a
    permit without plates (a LEFT JOIN)."""
    head: Sequence[Any] | None = None
    plates: list[tuple[str, bool]] = []
    for r in rows:
        if head is None or r[0] != head[0]:
            if head is not None:
                yield _permit(head, plates)
            head, plates = r, []
        if r[7] is not None:
            plates.append((str(r[7]), bool(r[8])))
    if head is not None:
        yield _permit(head, plates)


def _permit(r: Sequence[Any], plates: list[tuple[str, bool]]) -> tuple[int, PermitRow]:
    return int(r[6]), PermitRow(str(r[0]), str(r[1]), int(r[2]),
                                None if r[3] is None else int(r[3]), tuple(str(r[4]).split()),
                                str(r[5]), tuple(sorted(plates)))  # fmt: skip


_HISTORY: Final = msgspec.json.Decoder(PermitRow)


def history_json(p: PermitRow) -> str:
    return msgspec.json.encode(p).decode()


def from_history_json(text: str | bytes) -> PermitRow:
    return _HISTORY.decode(text)


def schema_problem(location: str, version: int) -> str | None:
    """Why a database at schema `version` cannot be used by this Varco (None: it can)."""
    if version == SCHEMA_VERSION:
        return None
    if version == 0:
        return f"{location} has no Varco permit schema: run `varco migrate`"
    if version < SCHEMA_VERSION:
        return (f"{location} has permit schema version {version}, this Varco needs "
                f"{SCHEMA_VERSION}: run `varco migrate`")  # fmt: skip
    return (f"{location} has permit schema version {version}, newer than this Varco's "
            f"{SCHEMA_VERSION}: upgrade Varco")  # fmt: skip


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
}

# A permit with its plates, one row per plate (`group` folds them); both backends' dialect.
PERMIT_SELECT: Final = ("SELECT p.permit_id, p.type, p.valid_from, p.valid_to, p.zones,"
                        " p.source, p.revision, pp.plate, pp.is_primary FROM permits p"
                        " LEFT JOIN permit_plates pp USING (permit_id)")  # fmt: skip


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
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value", (SCHEMA_VERSION,)
            )  # fmt: skip
        return SCHEMA_VERSION

    @property
    def revision(self) -> int:
        return int(self.conn.execute("SELECT value FROM meta WHERE key='revision'").fetchone()[0])

    def count(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM permits").fetchone()[0])

    def open_ids(self, source: str, at: int) -> set[str]:
        rows = self.conn.execute(
            "SELECT permit_id FROM permits WHERE source = ? AND (valid_to IS NULL OR valid_to > ?)",
            (source, at),
        )
        return {r[0] for r in rows}

    def changes_since(self, revision: int, limit: int = 10_000) -> list[tuple[int, PermitRow]]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        rows = self.conn.execute(
            "WITH c AS (SELECT * FROM permits WHERE revision > ? ORDER BY revision LIMIT ?)"
            " SELECT c.permit_id, c.type, c.valid_from, c.valid_to, c.zones, c.source,"
            " c.revision, pp.plate, pp.is_primary FROM c"
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
            " pp.is_primary, pp.plate FROM permits p JOIN permit_plates pp USING (permit_id)"
            " WHERE p.valid_to IS NULL OR p.valid_to >= ? ORDER BY p.permit_id, pp.plate",
            (min_end,),
        )

    def clear(self) -> None:
        with self._transaction():
            for table in ("permit_history", "permit_plates", "permits"):
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
            if len(ids) > 1 and not self.conn.execute(
                "SELECT EXISTS (SELECT 1 FROM permits WHERE permit_id BETWEEN ? AND ?)",
                (min(ids), max(ids)),
            ).fetchone()[0]:
                continue  # none stored between the least and the greatest id (byte order)
            rows = self.conn.execute(
                f"{PERMIT_SELECT} WHERE p.permit_id IN ({','.join('?' * len(ids))})"
                " ORDER BY p.permit_id", ids
            )  # fmt: skip
            found.update((p.permit_id, (rev, p)) for rev, p in group(rows))
        return found

    def _apply(self, changes: list[Change], now: int) -> None:
        c = self.conn
        c.executemany(
            "INSERT INTO permit_history (permit_id, revision, old_row, changed_at)"
            " VALUES (?, ?, ?, ?)",
            [(ch.permit.permit_id, ch.previous[0], history_json(ch.previous[1]), now)
             for ch in changes if ch.previous is not None],
        )  # fmt: skip
        c.executemany(
            "INSERT INTO permits (permit_id, type, valid_from, valid_to, zones, source,"
            " revision, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (permit_id) DO UPDATE SET type=excluded.type,"
            " valid_from=excluded.valid_from, valid_to=excluded.valid_to,"
            " zones=excluded.zones, source=excluded.source, revision=excluded.revision,"
            " updated_at=excluded.updated_at",
            [(p.permit_id, p.type, p.valid_from, p.valid_to, " ".join(p.zones), p.source,
              rev, now) for rev, p, _ in changes],
        )  # fmt: skip
        replaced = [ch.permit.permit_id for ch in changes if ch.previous is not None]
        if replaced:
            c.execute("DELETE FROM permit_plates WHERE permit_id IN (SELECT value FROM"
                      " json_each(?))", (json.dumps(replaced),))  # fmt: skip
        c.executemany(
            "INSERT INTO permit_plates (permit_id, plate, is_primary) VALUES (?, ?, ?)",
            [(p.permit_id, plate, int(primary)) for _, p, _ in changes
             for plate, primary in p.plates],
        )  # fmt: skip

    def _insert_new(self, permits: list[PermitRow], first_revision: int, now: int) -> None:
        self.conn.executemany(
            "INSERT INTO permits (permit_id, type, valid_from, valid_to, zones, source,"
            " revision, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(p.permit_id, p.type, p.valid_from, p.valid_to, " ".join(p.zones), p.source,
              rev, now) for rev, p in enumerate(permits, first_revision)],
        )  # fmt: skip
        self.conn.executemany(
            "INSERT INTO permit_plates (permit_id, plate, is_primary) VALUES (?, ?, ?)",
            [(p.permit_id, plate, int(pr)) for p in permits for plate, pr in p.plates],
        )
