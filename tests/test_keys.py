"""enforcement/keys.py: the Redis key names."""

from __future__ import annotations

from enforcement.keys import Keys


def test_redis_key_names_are_stable() -> None:
    """Key names are a storage format shared by running loaders and replicas: a change of
    one is a migration, not a refactoring."""
    k = Keys("p")
    assert [
        k.current,
        k.snapshots,
        k.snapshot_meta("s.vidx"),
        k.snapshot_chunk("s.vidx", 3),
        k.wanted,
        k.changes,
        k.heartbeat,
        k.lease,
        k.lease_epoch,
        k.wake,
        k.sources,
        k.audit,
        k.transits,
        k.transit_seen("ab"),
        k.followup_held,
        k.followup_due,
        k.violations,
        k.violations_index,
        k.violation_ids("ZTL|2026-12-07|AB123CD"),
        k.review,
        k.review_index,
        k.session("d1"),
        k.user_sessions("u1"),
        k.signin_failures("u1"),
        k.signin_lock("u1"),
        k.review_decided,
        k.review_decided_index,
        k.camera_minute(29_000_000),
        k.camera_last,
        k.replicas,
    ] == [
        "p:snapshot:current",
        "p:snapshots",
        "p:snapshot:s.vidx",
        "p:snapshot:s.vidx:3",
        "p:snapshot:wanted",
        "p:changes",
        "p:loader:heartbeat",
        "p:loader:lease",
        "p:loader:epoch",
        "p:wake",
        "p:sources",
        "p:audit",
        "p:transits",
        "p:transit:seen:ab",
        "p:followup:held",
        "p:followup:due",
        "p:violations",
        "p:violations:index",
        "p:violation:ids:ZTL|2026-12-07|AB123CD",
        "p:review",
        "p:review:index",
        "p:session:d1",
        "p:sessions:u1",
        "p:signin:failures:u1",
        "p:signin:lock:u1",
        "p:review:decided",
        "p:review:decided:index",
        "p:cameras:minute:29000000",
        "p:cameras:last",
        "p:replicas",
    ]
