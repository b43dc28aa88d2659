"""The permit database's change feed, on SQLite and on PostgreSQL alike: changes since a
revision, and never a change skipped, even with concurrent writers.

The PostgreSQL cases run as in test_db.py (a throwaway database on $VARCO_TEST_PG_URL,
skipped, saying why, when no server answers).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from loader.store import PermitRow, PermitStore

from ..support.store import Opener, permit


def test_changes_since_by_revision_with_a_limit(open_store: Opener) -> None:
    with open_store() as db:
        db.upsert([permit(f"P{i}") for i in range(6)])  # revisions 1-6
        db.upsert([permit("P1", valid_to=1), permit("P4", valid_to=1)])  # 7, 8
        db.upsert_one(permit("P1", valid_to=2))  # 9: P1 is listed once, as its latest
        got = db.changes_since(0)
        assert [(r, p.permit_id) for r, p in got] == [
            (1, "P0"),
            (3, "P2"),
            (4, "P3"),
            (6, "P5"),
            (8, "P4"),
            (9, "P1"),
        ]
        assert got[-1][1] == permit("P1", valid_to=2)
        assert [r for r, _ in db.changes_since(3, limit=2)] == [4, 6]
        assert [r for r, _ in db.changes_since(6, limit=2)] == [8, 9]
        assert db.changes_since(9) == [] and db.changes_since(100) == []
        with pytest.raises(ValueError, match="limit"):
            db.changes_since(0, limit=0)


def _transaction_held_open(
    db: PermitStore, first: PermitRow, inside: threading.Event, release: threading.Event
) -> None:
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
                batch = [
                    permit(pid, valid_to=2_000_000_000 + w * 1000 + r)
                    for pid in rng.sample(ids, rng.randint(1, 4))
                ]

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
    with (
        psycopg.connect(pg_url) as a,
        psycopg.connect(pg_url) as b,
        psycopg.connect(pg_url, autocommit=True) as tailer,
    ):
        a.execute("INSERT INTO naive VALUES ('A', nextval('naive_revision'))")  # takes 1
        b.execute("INSERT INTO naive VALUES ('B', nextval('naive_revision'))")  # takes 2
        b.commit()
        poll = "SELECT permit_id, revision FROM naive WHERE revision > %s ORDER BY revision"
        assert tailer.execute(poll, (0,)).fetchall() == [("B", 2)]  # last seen: 2
        a.commit()
        assert tailer.execute(poll, (2,)).fetchall() == []  # A (revision 1) is lost
