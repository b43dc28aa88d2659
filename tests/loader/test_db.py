"""The permit database, on SQLite and on PostgreSQL alike: round trips, revisions, history,
byte-order index rows, bulk and chunked writes (the change feed: test_db_changes.py; schema
versions and `varco migrate`: test_db_schema.py).

The PostgreSQL cases use a throwaway database on $VARCO_TEST_PG_URL (default: the local
server, user postgres) made for this test session, one schema per test, and are skipped,
saying why, when no server answers.
"""

from __future__ import annotations

import msgspec
import pytest

import loader.store

from ..support.store import Opener, permit


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
            (1, "A"),
            (3, "C"),
            (4, "B"),
            (5, "D"),
        ]


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


def test_index_rows_in_byte_order(open_store: Opener) -> None:
    ids = ["b", "a", "B", "_", "é", "Z", "aa", "a-1", "A", "~", "É", "0", "a b"]
    with open_store() as db:
        db.upsert([permit(pid, plates=("ZZ999ZZ", "AA000AA")) for pid in ids])
        db.upsert(
            [
                permit(pid, valid_to=end, plates=("ZZ999ZZ", "AA000AA"))
                for pid, end in [("ENDED", 999), ("OPEN", None)]
            ]
        )
        rows = list(db.index_rows(1000))
    expected = sorted([*ids, "OPEN"], key=lambda s: s.encode())
    assert expected[:4] == ["0", "A", "B", "OPEN"] and expected[-3:] == ["~", "É", "é"]
    assert [r[0] for r in rows[::2]] == expected
    assert [r[7] for r in rows] == ["AA000AA", "ZZ999ZZ"] * len(expected)
    assert rows[0] == (
        "0",
        1_700_000_000,
        2_000_000_000,
        "1",
        "",
        "municipal",
        False,
        "AA000AA",
        "",
    )
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
            (4, "A"),
            (5, "B"),
            (6, "E"),
            (7, "F"),
            (8, "G"),
        ]
        assert db.history("B") == [(3, v["B"])]  # B's first version within the same upsert
        assert db.upsert(v[pid] for pid in "ABCDEFG") == 2  # A and B back; from a generator


def test_clear_keeps_the_revision(open_store: Opener) -> None:
    with open_store() as db:
        db.upsert([permit("A"), permit("B")])
        db.upsert([permit("A", valid_to=1)])
        db.clear()
        assert (db.count(), db.revision, db.history("A")) == (0, 3, [])
        assert db.bulk_insert_new([permit("A")]) == 1
        assert db.changes_since(0) == [(4, permit("A"))]
