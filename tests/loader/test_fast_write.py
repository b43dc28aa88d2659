"""The fast paths of the upsert, on SQLite and PostgreSQL: a chunk of ids with nothing stored
in their range skips the lookup, and the range is in byte order whatever the database's
collation (the PostgreSQL test database's default is ICU's linguistic `und`, where "é" sorts
before "Z"); new permits are written straight, changed ones merged."""

from __future__ import annotations

import pytest

import loader.postgres
import loader.store

from ..support.store import Opener, permit


def test_a_range_check_in_byte_order(open_store: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader.store, "UPSERT_CHUNK", 2)
    stored = [permit("é-1"), permit("Z-1"), permit("M-1")]
    changed = [permit(p.permit_id, valid_to=1_800_000_000) for p in stored]
    with open_store() as db:
        db.upsert(stored)  # revisions 1-3
        # chunks [Z-1 é-1]: both stored, "Z-1" < "é-1" in byte order; [A-1 B-1]: nothing
        # stored in between; [M-1 N-1]: M-1 stored.
        new = [permit("A-1"), permit("B-1"), permit("N-1")]
        assert db.upsert([changed[1], changed[0], new[0], new[1], changed[2], new[2]]) == 6
        for p in [*changed, *new]:
            assert db.get(p.permit_id) == p
        assert [h for p in stored for h in db.history(p.permit_id)] == [
            (1, stored[0]),
            (2, stored[1]),
            (3, stored[2]),
        ]
        assert db.upsert([*changed, *new]) == 0


def test_a_large_write_refreshes_the_statistics(
    open_store: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL runs ANALYZE after a write of ANALYZE_AFTER permits or more."""
    monkeypatch.setattr(loader.postgres, "ANALYZE_AFTER", 2)
    with open_store() as db:
        db.upsert([permit("A"), permit("B")])
        assert db.upsert([permit("A"), permit("B")]) == 0
        assert db.bulk_insert_new([permit("C"), permit("D")]) == 2
        if isinstance(db, loader.postgres.PgPermitDB):
            row = db.conn.execute(
                "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'permits'"
            ).fetchone()
            assert row == (True,)
