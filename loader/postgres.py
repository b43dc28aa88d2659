"""The permit database on PostgreSQL: the same tables and API as the SQLite one (`loader.sqlite`).

What differs, and why:

- Revisions. A write transaction starts with `SELECT ... FROM meta WHERE key = 'revision'
  FOR UPDATE`, numbers its changes from that value and writes the last one back just before
  it commits. The row lock queues the next writer until this one has committed (and become
  visible), so revisions become visible in order and `changes_since(last_seen)` never skips
  a row committed late; a sequence cannot promise that (see `loader.store`). Connections are
  pinned to READ COMMITTED: each statement after the lock sees every earlier commit, and a
  database defaulting to REPEATABLE READ would make a queued writer fail instead of wait.
- Byte order. Text keys are `COLLATE "C"`, so the primary key index, comparisons and
  `index_rows` order are byte order (code point order), as in SQLite, whatever the
  database's locale: the index builder binary-searches the permit ids it is given.
- Schema. `varco migrate` runs `migrate()`; opening a database whose schema is missing or
  older raises SchemaError saying so, because several services share the database and its
  upgrade should be one deliberate step, not a side effect of whichever starts first.
- Speed. Writes use COPY: `bulk_insert_new` straight into the tables; an upsert fetches the
  stored versions of a chunk of permits in one query, compares them in Python, copies the
  new ones straight into the tables and merges the changed ones from a temporary table
  with one INSERT ... ON CONFLICT. A large write refreshes the planner's statistics.
  `index_rows` streams through a server-side cursor.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import TupleRow

from .columns import PERMIT_SELECT, from_history_json, group, history_json, periods_text
from .store import (
    SCHEMA_VERSION,
    Change,
    DatabaseError,
    IndexRow,
    PermitRow,
    PermitStore,
    SchemaError,
    schema_problem,
)

# Concurrent `varco migrate` runs take turns on this advisory lock ("VARCO" in ASCII).
MIGRATE_LOCK: Final = 0x56_41_52_43_4F
INDEX_ROWS_FETCH: Final = 20_000
# A write of at least this many permits refreshes the planner's statistics (`_written`).
ANALYZE_AFTER: Final = 50_000

PG_MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE IF NOT EXISTS permits (
            permit_id  text COLLATE "C" PRIMARY KEY,
            type       text NOT NULL,
            valid_from bigint NOT NULL,            -- epoch seconds, inclusive
            valid_to   bigint,                     -- epoch seconds, exclusive; NULL = unlimited
            zones      text NOT NULL DEFAULT '',   -- space-separated zone codes; '' = the type's
            source     text NOT NULL,
            revision   bigint NOT NULL,
            updated_at bigint NOT NULL
        )""",
        "CREATE INDEX IF NOT EXISTS permits_revision ON permits (revision)",
        """CREATE TABLE IF NOT EXISTS permit_plates (
            permit_id  text COLLATE "C" NOT NULL REFERENCES permits (permit_id)
                       ON DELETE CASCADE,
            plate      text COLLATE "C" NOT NULL,  -- normalised
            is_primary boolean NOT NULL,
            PRIMARY KEY (permit_id, plate)
        )""",
        "CREATE INDEX IF NOT EXISTS permit_plates_plate ON permit_plates (plate)",
        "CREATE TABLE IF NOT EXISTS meta (key text PRIMARY KEY, value bigint NOT NULL)",
        "INSERT INTO meta (key, value) VALUES ('revision', 0) ON CONFLICT (key) DO NOTHING",
    ),
    2: (
        """CREATE TABLE IF NOT EXISTS permit_history (
            permit_id  text COLLATE "C" NOT NULL,
            revision   bigint NOT NULL,            -- the revision this old version had
            old_row    jsonb NOT NULL,             -- the old version
            changed_at bigint NOT NULL,            -- epoch seconds it was replaced
            PRIMARY KEY (permit_id, revision)
        )""",
    ),
    # A permit's validity periods beyond the one valid_from/valid_to hold (loader/periods.py).
    3: ("ALTER TABLE permits ADD COLUMN IF NOT EXISTS periods text NOT NULL DEFAULT ''",),
    # Which configured feed brought a permit; each feed's last ETag.
    4: (
        "ALTER TABLE permits ADD COLUMN IF NOT EXISTS feed text NOT NULL DEFAULT ''",
        """CREATE TABLE IF NOT EXISTS feed_state (
            feed       text PRIMARY KEY,
            etag       text,
            updated_at bigint NOT NULL
        )""",
    ),
    # People who sign in (loader/users.py); who changed a permit through the admin API, why.
    5: (
        """CREATE TABLE IF NOT EXISTS users (
            username   text PRIMARY KEY,
            role       text NOT NULL,
            password   text NOT NULL,              -- scrypt$n$r$p$salt$hash, never logged
            disabled   boolean NOT NULL DEFAULT false,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL
        )""",
        """CREATE TABLE IF NOT EXISTS permit_actions (
            permit_id  text COLLATE "C" NOT NULL,
            revision   bigint NOT NULL,            -- the revision the change produced
            at         bigint NOT NULL,            -- epoch seconds
            actor      text NOT NULL,              -- API key id or user:<name>
            person     text,
            action     text NOT NULL,
            reason     text NOT NULL DEFAULT '',
            PRIMARY KEY (permit_id, revision)
        )""",
    ),
}

_PERMIT_COLUMNS: Final = (
    "permit_id, type, valid_from, valid_to, zones, source, revision, updated_at, periods, feed"
)
_COPY_PERMITS: Final = "COPY {table} (" + _PERMIT_COLUMNS + ") FROM STDIN"


def describe(url: str) -> str:
    """The URL without its password (or any other parameter), for messages."""
    try:
        d = conninfo_to_dict(url)
    except psycopg.Error:
        return "postgresql://(an unparsable URL)"
    user = f"{d['user']}@" if d.get("user") else ""
    port = f":{d['port']}" if d.get("port") else ""
    return f"postgresql://{user}{d.get('host') or ''}{port}/{d.get('dbname') or ''}"


class PgPermitDB(PermitStore):
    """A PostgreSQL permit database. `url`: a libpq URL, postgresql://user@host:port/dbname."""

    def __init__(self, url: str, *, check_schema: bool = True) -> None:
        self.location = describe(url)
        try:
            given = conninfo_to_dict(url)
        except psycopg.Error:
            raise DatabaseError(f"not a valid PostgreSQL URL: {self.location}") from None
        extra: dict[str, Any] = {}
        if "connect_timeout" not in given:
            extra["connect_timeout"] = 10  # libpq waits forever by default
        if "application_name" not in given:
            extra["application_name"] = "varco"
        try:
            self.conn: psycopg.Connection[TupleRow] = psycopg.connect(url, autocommit=True, **extra)
        except psycopg.OperationalError as exc:
            raise DatabaseError(f"cannot connect to {self.location}: {exc}") from None
        self.conn.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        if check_schema:
            problem = schema_problem(self.location, self._schema_version())
            if problem:
                self.conn.close()
                raise SchemaError(problem)

    def close(self) -> None:
        self.conn.close()

    def _schema_version(self) -> int:
        row = self.conn.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
        if not (row and row[0]):
            return 0
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return 0 if row is None else int(row[0])

    def migrate(self) -> int:
        with self.conn.transaction():  # DDL is transactional: all of a migration or none
            self.conn.execute("SELECT pg_advisory_xact_lock(%s::bigint)", (MIGRATE_LOCK,))
            version = self._schema_version()
            if version > SCHEMA_VERSION:
                raise SchemaError(str(schema_problem(self.location, version)))
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in PG_MIGRATIONS[v]:
                    self.conn.execute(statement)
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (SCHEMA_VERSION,),
            )
        return SCHEMA_VERSION

    @property
    def revision(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()
        assert row is not None
        return int(row[0])

    def count(self) -> int:
        row = self.conn.execute("SELECT count(*) FROM permits").fetchone()
        assert row is not None
        return int(row[0])

    def open_ids(
        self, source: str, at: int, feed: str | None = None, unclaimed: bool = True
    ) -> set[str]:
        rows = self.conn.execute(
            "SELECT permit_id FROM permits WHERE source = %s"
            " AND (valid_to IS NULL OR valid_to > %s)"
            " AND (%s::text IS NULL OR feed = %s OR (%s AND feed = ''))",
            (source, at, feed, feed, unclaimed),
        )
        return {r[0] for r in rows}

    def feed_etag(self, feed: str) -> str | None:
        row = self.conn.execute("SELECT etag FROM feed_state WHERE feed = %s", (feed,)).fetchone()
        return None if row is None else row[0]

    def set_feed_etag(self, feed: str, etag: str | None) -> None:
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO feed_state (feed, etag, updated_at) VALUES (%s, %s, %s)"
                " ON CONFLICT (feed) DO UPDATE SET etag = excluded.etag,"
                " updated_at = excluded.updated_at",
                (feed, etag, int(time.time())),
            )

    def changes_since(self, revision: int, limit: int = 10_000) -> list[tuple[int, PermitRow]]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        rows = self.conn.execute(
            "WITH c AS (SELECT * FROM permits WHERE revision > %s ORDER BY revision LIMIT %s)"
            " SELECT c.permit_id, c.type, c.valid_from, c.valid_to, c.zones, c.source,"
            " c.revision, c.periods, c.feed, pp.plate, pp.is_primary FROM c"
            " LEFT JOIN permit_plates pp USING (permit_id) ORDER BY c.revision, pp.plate",
            (revision, limit),
        ).fetchall()  # one statement: the permits and their plates as of one instant
        return list(group(rows))

    def history(self, permit_id: str) -> list[tuple[int, PermitRow]]:
        rows = self.conn.execute(
            "SELECT revision, old_row::text FROM permit_history WHERE permit_id = %s"
            " ORDER BY revision",
            (permit_id,),
        )
        return [(int(rev), from_history_json(text)) for rev, text in rows]

    def index_rows(self, min_end: int) -> Iterator[IndexRow]:
        # A server-side cursor streams the rows (all of them would not fit in memory); it
        # lives in a transaction, which also gives the whole scan one snapshot.
        with self.conn.transaction(), self.conn.cursor(name="varco_index_rows") as cur:
            cur.itersize = INDEX_ROWS_FETCH
            cur.execute(
                "SELECT p.permit_id, p.valid_from, p.valid_to, p.type, p.zones, p.source,"
                " pp.is_primary, pp.plate, p.periods"
                " FROM permits p JOIN permit_plates pp USING (permit_id)"
                " WHERE p.valid_to IS NULL OR p.valid_to >= %s"
                ' ORDER BY p.permit_id COLLATE "C", pp.plate COLLATE "C"',
                (min_end,),
            )
            yield from cur

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql.replace("?", "%s"), params).fetchall()

    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return self.conn.execute(sql.replace("?", "%s"), params).rowcount

    def clear(self) -> None:
        with self.conn.transaction():
            self.conn.execute("DELETE FROM permit_history")
            self.conn.execute("DELETE FROM permit_actions")
            self.conn.execute("DELETE FROM permit_plates")
            self.conn.execute("DELETE FROM permits")
            self.conn.execute("DELETE FROM feed_state")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[int]:
        with self.conn.transaction():
            # The lock that puts revisions in commit order; held until COMMIT or ROLLBACK.
            row = self.conn.execute(
                "SELECT value FROM meta WHERE key = 'revision' FOR UPDATE"
            ).fetchone()
            assert row is not None
            yield int(row[0])

    def _set_revision(self, revision: int) -> None:
        self.conn.execute("UPDATE meta SET value = %s WHERE key = 'revision'", (revision,))

    def _current(self, permit_ids: Sequence[str]) -> dict[str, tuple[int, PermitRow]]:
        if len(permit_ids) > 1:  # none stored between the least and the greatest id: done
            row = self.conn.execute(
                'SELECT EXISTS (SELECT 1 FROM permits WHERE permit_id COLLATE "C"'
                " BETWEEN %s AND %s)",
                (min(permit_ids), max(permit_ids)),
            ).fetchone()
            if row is not None and not row[0]:
                return {}
        rows = self.conn.execute(
            PERMIT_SELECT + " WHERE p.permit_id = ANY(%s) ORDER BY p.permit_id",
            (list(permit_ids),),
        )
        return {p.permit_id: (rev, p) for rev, p in group(rows)}

    def _apply(self, changes: list[Change], now: int) -> None:
        # COPY, not executemany: a 1M-row regional upsert is bound by round trips. A permit
        # the database does not have goes straight into `permits` (no other writer can add
        # it meanwhile: all hold the revision lock); a changed one is staged in a temporary
        # table and merged with one INSERT ... ON CONFLICT. Straight: bench_sync's 909,066 new
        # permits in 7.8-8.8 s, against 13.9-16.5 s staged.
        new = [ch for ch in changes if ch.previous is None]
        replaced = [ch for ch in changes if ch.previous is not None]
        with self.conn.cursor() as cur:
            if new:
                self._copy_permits(cur, "permits", ((rev, p) for rev, p, _ in new), now)
            if replaced:
                cur.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS varco_staged_permits"
                    " (LIKE permits) ON COMMIT DELETE ROWS"
                )
                self._copy_permits(
                    cur, "varco_staged_permits", ((rev, p) for rev, p, _ in replaced), now
                )
                cur.execute(
                    f"INSERT INTO permits ({_PERMIT_COLUMNS}) SELECT {_PERMIT_COLUMNS}"
                    " FROM varco_staged_permits"
                    " ON CONFLICT (permit_id) DO UPDATE SET type = excluded.type,"
                    " valid_from = excluded.valid_from, valid_to = excluded.valid_to,"
                    " zones = excluded.zones, source = excluded.source,"
                    " revision = excluded.revision, updated_at = excluded.updated_at,"
                    " periods = excluded.periods, feed = excluded.feed"
                )
                cur.execute("TRUNCATE varco_staged_permits")  # the next chunk of this transaction
                cur.execute(
                    "DELETE FROM permit_plates WHERE permit_id = ANY(%s)",
                    ([ch.permit.permit_id for ch in replaced],),
                )
                with cur.copy(
                    "COPY permit_history (permit_id, revision, old_row, changed_at) FROM STDIN"
                ) as copy:
                    for ch in replaced:
                        assert ch.previous is not None
                        copy.write_row(
                            (ch.permit.permit_id, ch.previous[0], history_json(ch.previous[1]), now)
                        )
            self._copy_plates(cur, [p for _, p, _ in changes])

    @staticmethod
    def _copy_permits(
        cur: psycopg.Cursor[TupleRow],
        table: str,
        numbered: Iterable[tuple[int, PermitRow]],
        now: int,
    ) -> None:
        with cur.copy(_COPY_PERMITS.format(table=table)) as copy:
            for rev, p in numbered:
                copy.write_row(
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
                )

    def _insert_new(self, permits: list[PermitRow], first_revision: int, now: int) -> None:
        with self.conn.cursor() as cur:
            self._copy_permits(cur, "permits", enumerate(permits, first_revision), now)
            self._copy_plates(cur, permits)

    def _written(self, changed: int) -> None:
        # The planner's statistics after a large write: until autovacuum gets to it (a
        # minute or more later), a table that grew by a million rows is planned as if it had
        # not, and the next sync's lookups of stored permits become sequential scans (a
        # 1M-permit sync right after the first one: 57 s in `_current`, against 13 s).
        if changed >= ANALYZE_AFTER:
            self.conn.execute("ANALYZE permits, permit_plates")

    @staticmethod
    def _copy_plates(cur: psycopg.Cursor[TupleRow], permits: list[PermitRow]) -> None:
        with cur.copy("COPY permit_plates (permit_id, plate, is_primary) FROM STDIN") as copy:
            for p in permits:
                for plate, primary in p.plates:
                    copy.write_row((p.permit_id, plate, primary))
