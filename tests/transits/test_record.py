"""Transit identity: ids and dedup keys are stored (Redis, spool) and compared across
processes, replicas and versions, so their derivation must never change."""

from __future__ import annotations

import hashlib

from enforcement.transits.record import dedup_key, identity, transit_id


def test_ids_are_pinned() -> None:
    # Values from the first release's derivation: a changed formula would make a retry
    # after an upgrade a second transit.
    assert transit_id("cam-1", "evt-1", 1795431600.25) == "192c51b0c454f339abc2d950"
    assert dedup_key("cam-1", "evt-1") == "1fd0e4c64277703982268af59b410c39"


def test_ids_are_blake2b_of_the_fields() -> None:
    for camera, event, ts in (("c", "e", 0.0), ("cam-7", "w-ab12", 1.8e9 + 0.0004), ("", "", 1)):
        text = f"{camera}\0{event}\0{ts:.3f}".encode()
        assert transit_id(camera, event, ts) == hashlib.blake2b(text, digest_size=12).hexdigest()
        key = hashlib.blake2b(f"{camera}\0{event}".encode(), digest_size=16).hexdigest()
        assert dedup_key(camera, event) == key
        assert transit_id(camera, event, ts) != transit_id(camera, event + "x", ts)


def test_identity_is_both_in_one_call() -> None:
    for camera, event, ts in (("cam-1", "evt-1", 1795431600.25), ("c", "é\0x", 1.8e9 + 0.0005)):
        assert identity(camera, event, ts) == (
            transit_id(camera, event, ts),
            dedup_key(camera, event),
        )
