"""The permit database: permits, their plates, their history, and one revision counter.

Two backends share one API, the `PermitStore` contract here: SQLite (`loader.sqlite`, a file
in the data directory, the default) and PostgreSQL (`loader.postgres`, when `database_url` is
set); `loader.database.open_db(settings)` picks one.

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
SCHEMA_VERSION idempotently: 1 is the original schema, 2 adds `permit_history`, 3 a permit's
validity periods (`permits.periods`, loader/periods.py), 4 which configured feed brought a
permit (`permits.feed`) and each feed's last ETag (`feed_state`), 5 the people who sign in
(`users`, loader/users.py) and who changed a permit through the admin API, and why
(`permit_actions`, one row per revision such a change produced, written in its transaction).
"""

from __future__ import annotations

import contextlib
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final, NamedTuple, Self

import msgspec

SCHEMA_VERSION: Final = 5
# Upserts compare a chunk of permits with their stored versions fetched in one query.
UPSERT_CHUNK: Final = 5_000
BULK_CHUNK: Final = 50_000

# (permit_id, valid_from, valid_to, type, zones, source, is_primary, plate)
# (permit_id, valid_from, valid_to, type, zones, source, is_primary, plate, periods)
IndexRow = tuple[str, int, int | None, str, str, str, int, str, str]
# A validity period [start, end) in epoch seconds; end None: unlimited.
Period = tuple[int, int | None]


class DatabaseError(Exception):
    """The permit database cannot be used as it is (unreachable, wrong schema)."""


class SchemaError(DatabaseError):
    """The database's schema is missing, older or newer than this Varco's."""


class PermitRow(msgspec.Struct, frozen=True, gc=False):
    """One permit as stored: validity [valid_from, valid_to) in epoch seconds, or, for a
    permit renewed while a period was running, `periods` (by start; valid_from/valid_to then
    span them: loader/periods.py)."""

    permit_id: str
    type: str
    valid_from: int
    valid_to: int | None
    zones: tuple[str, ...]  # empty: the type's zones
    source: str
    plates: tuple[tuple[str, bool], ...]  # (normalised plate, primary), sorted
    periods: tuple[Period, ...] = ()  # empty: the one period [valid_from, valid_to)
    # The configured feed ([sources.NAME]) that brought the permit; "" for an import or the
    # admin API. A feed closes only what it brought (two regional sources, one circuit).
    feed: str = ""


class Note(msgspec.Struct, frozen=True):
    """Who changed a permit through the admin API, when, how and why (`permit_actions`)."""

    at: int  # epoch seconds
    actor: str  # an API key's id or "user:<name>"
    person: str | None  # the signed-in person's user name
    action: str  # issue, change, revoke, renew
    reason: str = ""


# What an upsert writes, from the stored version (None: a new permit) and the given one.
Merge = Callable[[PermitRow | None, PermitRow], PermitRow]


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
    def open_ids(
        self, source: str, at: int, feed: str | None = None, unclaimed: bool = True
    ) -> set[str]:
        """Ids of the permits from `source` not ended at `at` (a feed sync closes those a
        complete export no longer lists); with `feed`, only those that feed brought, and
        with `unclaimed` also those no feed is known to have brought (written before
        Varco recorded it)."""

    @abstractmethod
    def feed_etag(self, feed: str) -> str | None:
        """The ETag of the feed's last synced answer (an HTTP feed answers 304 to it)."""

    @abstractmethod
    def set_feed_etag(self, feed: str, etag: str | None) -> None: ...

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

    def upsert(self, permits: Iterable[PermitRow], merge: Merge | None = None) -> int:
        """Insert or replace permits in one transaction; returns how many changed.

        A permit identical to the stored one is left alone (no new revision); a permit
        listed twice counts once, as its last version. With `merge`, what is written is
        `merge(stored version or None, given version)`, computed inside the transaction
        (an import's renewals: loader/periods.py)."""
        return self._upsert(permits, merge)[0]

    def upsert_one(self, permit: PermitRow) -> int:
        """Upsert one permit; returns its revision after the call (its existing revision
        if it was unchanged)."""
        last = self._upsert((permit,))[1]
        assert last is not None
        return last

    def upsert_one_if(
        self, permit: PermitRow, expected_revision: int | None, note: Note | None = None
    ) -> int | None:
        """Write `permit` only if its stored revision is still `expected_revision` (read,
        changed, written back: a concurrent change in between must not be overwritten), or,
        with None, only if it does not exist yet (issued once, never overwritten); its
        revision after the call, or None when that no longer holds (nothing written). A
        `note` is kept with the revision the write produced, in the same transaction."""
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
                if note is not None:
                    self.execute(
                        "INSERT INTO permit_actions (permit_id, revision, at, actor, person,"
                        " action, reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (permit.permit_id, last, *msgspec.structs.astuple(note)),
                    )
        return last

    def notes(self, permit_id: str) -> list[tuple[int, Note]]:
        """The admin API's changes of the permit, by revision: (revision, note)."""
        rows = self.query(
            "SELECT revision, at, actor, person, action, reason FROM permit_actions"
            " WHERE permit_id = ? ORDER BY revision",
            (permit_id,),
        )
        return [(int(r[0]), Note(int(r[1]), r[2], r[3], r[4], r[5])) for r in rows]

    # Plain statements for the small tables (users, permit_actions): written with `?`
    # placeholders, which a backend translates to its own.

    @abstractmethod
    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    @abstractmethod
    def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; the number of rows it changed."""

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

    def _upsert(
        self, permits: Iterable[PermitRow], merge: Merge | None = None
    ) -> tuple[int, int | None]:
        """(permits changed, the revision of the last permit given)."""
        changed, last = 0, None
        now = int(time.time())
        with self._writing() as revision:
            for chunk in chunks(permits, UPSERT_CHUNK):
                stored = self._current([p.permit_id for p in chunk])
                changes, revision, last = plan(chunk, stored, revision, merge)
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


def chunks(items: Iterable[PermitRow], size: int) -> Iterator[list[PermitRow]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def canonical(p: PermitRow) -> PermitRow:
    """The permit as the database gives it back (sorted plates, zones split on spaces, one
    period kept in valid_from/valid_to), so that comparing with the stored version never
    sees a change that is not one."""
    if not p.zones and len(p.plates) < 2 and not p.periods:  # most permits: nothing to do
        return p
    plates = tuple(sorted(p.plates))
    zones = tuple(" ".join(p.zones).split())
    periods: tuple[Period, ...]
    if len(p.periods) == 1:
        (start, end), periods = p.periods[0], ()
    else:
        start, end, periods = p.valid_from, p.valid_to, p.periods
    if (plates, zones, start, end, periods) == (
        p.plates,
        p.zones,
        p.valid_from,
        p.valid_to,
        p.periods,
    ):
        return p
    return msgspec.structs.replace(
        p, plates=plates, zones=zones, valid_from=start, valid_to=end, periods=periods
    )


def plan(
    chunk: list[PermitRow],
    stored: dict[str, tuple[int, PermitRow]],
    revision: int,
    merge: Merge | None = None,
) -> tuple[list[Change], int, int]:
    """Number the permits of `chunk` that differ from their `stored` versions from
    `revision` + 1 on (with `merge`: the merged versions); returns the changes, the last
    revision handed out, and the revision of the chunk's last permit."""
    latest = {p.permit_id: p for p in chunk}
    if len(latest) < len(chunk):  # a permit listed twice: its last version, at its last position
        latest = {}
        for p in chunk:
            latest.pop(p.permit_id, None)
            latest[p.permit_id] = p
    changes: list[Change] = []
    last = revision
    for pid, p in latest.items():
        old = stored.get(pid)
        if merge is not None:
            p = merge(None if old is None else old[1], p)
        p = canonical(p)
        if old is not None and old[1] == p:
            last = old[0]
            continue
        revision += 1
        last = revision
        changes.append(Change(revision, p, old))
    return changes, revision, last


def schema_problem(location: str, version: int) -> str | None:
    """Why a database at schema `version` cannot be used by this Varco (None: it can)."""
    if version == SCHEMA_VERSION:
        return None
    if version == 0:
        return f"{location} has no Varco permit schema: run `varco migrate`"
    if version < SCHEMA_VERSION:
        return (
            f"{location} has permit schema version {version}, this Varco needs "
            f"{SCHEMA_VERSION}: run `varco migrate`"
        )
    return (
        f"{location} has permit schema version {version}, newer than this Varco's "
        f"{SCHEMA_VERSION}: upgrade Varco"
    )
