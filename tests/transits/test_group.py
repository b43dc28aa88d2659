"""A group commit's transits, encoded straight into flat lists (group.py): byte for byte what
the record and its Seen were before (every reader, and a city upgrading with a day of
transits in Redis, reads the same bytes), and through a real Redis: the common group in one
call, and a group holding events another replica already recorded decided one by one."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
import redis

from enforcement.config.settings import Settings
from enforcement.core.plates import normalise
from enforcement.core.rules import Rules
from enforcement.core.verdict import Verdict
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.transits.group import Group
from enforcement.transits.log import TransitLog
from enforcement.transits.recent import Recent
from enforcement.transits.record import (
    DECODE_RECORD,
    DECODE_SEEN,
    ENCODE,
    NO_FIELDS,
    Seen,
    Transit,
    TransitRecord,
    dedup_key,
    encode_record,
    seen_of,
    transit_id,
)

from ..support.common import eventually

TS = 1795431600.25


class Kept(msgspec.Struct):
    """A vendor adapter's kept fields (encoded in place, with the record)."""

    uuid: str
    frames: list[int]


def _transit(event: str, plate: str = "AB123CD", fields: object = None, **kw: Any) -> Transit:
    args: dict[str, Any] = {"ts": TS, "confidence": 0.92, "country": None, **kw}
    return Transit("cam-1", "PD-03", event, plate, normalise(plate), fields=fields, **args)


def _verdict(event: str, plate: str = "AB123CD", **kw: Any) -> Verdict:
    return Verdict(
        kw.pop("verdict", "allowed"), kw.pop("reason", "permit"), plate, **kw, event_id=event
    )


def _before(t: Transit, gate: Any, v: Verdict, received: float) -> TransitRecord:
    """The record as Intake built it before group.py (record_of)."""
    event_id = v.event_id or ""
    grace = v.grace_until
    return TransitRecord(
        transit_id(t.camera, event_id, t.ts),
        t.camera,
        event_id,
        gate.code,
        gate.zone,
        v.plate,
        t.raw,
        t.ts,
        received,
        v.verdict,
        v.reason,
        v.permits,
        v.index_revision,
        None if grace is None else int(grace.timestamp()),
        t.confidence,
        t.country,
        NO_FIELDS if t.fields is None else t.fields,  # type: ignore[arg-type]
    )


def test_a_group_encodes_what_the_record_and_its_seen_encoded(
    demo: tuple[Settings, Rules],
) -> None:
    _, rules = demo
    gate = rules.gates["PD-03"]
    grace = dt.datetime(2026, 12, 8, 10, 0, tzinfo=dt.UTC)
    cases = [
        (_transit("e1"), _verdict("e1", permits=["P-1", "P-2"], index_revision=7)),
        (
            _transit("e2", "ZZ999ZZ", confidence=None, country="D"),
            _verdict("e2", "ZZ999ZZ", verdict="pending", reason="no_permit", grace_until=grace),
        ),
        (_transit("e3", fields={"best": "uuid-1", "n": 3}), _verdict("e3")),
        (_transit("e4", fields=Kept("u-4", [1, 2])), _verdict("e4", verdict="review")),
        (_transit("e5", fields={"blob": "x" * 9000}), _verdict("e5")),  # cut (MAX_RECORD)
        (_transit("", ""), _verdict("", "", verdict="review", reason="unreadable")),
    ]
    group = Group()
    ids = group.add([t for t, _ in cases[:2]], [gate] * 2, [v for _, v in cases[:2]], TS + 1)
    ids += group.add([t for t, _ in cases[2:]], [gate] * 4, [v for _, v in cases[2:]], TS + 1)
    assert len(group) == 6 and group.ids == ids
    for i, (t, v) in enumerate(cases):
        before = _before(t, gate, v, TS + 1)
        assert group.frames[i] == encode_record(before)
        assert group.seens[i] == ENCODE(seen_of(before))
        assert ids[i] == before.id and group.digests[i] == dedup_key("cam-1", t.event_id or "")
        assert DECODE_SEEN(group.seens[i]) == seen_of(before)
    assert DECODE_RECORD(group.frames[4]).vendor == msgspec.Raw(
        ENCODE({"blob": "x" * 256})
    )  # cut as before


def test_a_transit_that_fails_to_encode_leaves_the_group_as_it_was(
    demo: tuple[Settings, Rules],
) -> None:
    gate = demo[1].gates["PD-03"]
    group = Group()
    group.add([_transit("ok")], [gate], [_verdict("ok")], TS)
    bad = _transit("bad", fields=object())  # msgspec cannot encode it
    try:
        group.add([_transit("fine"), bad], [gate] * 2, [_verdict("fine"), _verdict("bad")], TS)
    except TypeError:
        pass
    else:
        raise AssertionError("encoded an object msgspec cannot encode")
    assert (len(group), len(group.ids), len(group.digests), len(group.seens)) == (1, 1, 1, 1)


def test_recent_remembers_groups_within_the_window_and_its_size() -> None:
    recent = Recent(window_s=60, most=3)
    seen = ENCODE(Seen("id-1", "allowed", "permit", [], 0, None, "AB123CD", TS))
    recent.remember_all(["a", "b"], [seen, seen], now=100.0)
    recent.remember_all(["c", "d"], [seen, seen], now=130.0)
    assert not recent.knows_any(["a", "x"])  # the oldest went: at most 3
    assert recent.knows_any(["x", "b"])
    assert recent.get("b", 150.0) == DECODE_SEEN(seen)
    assert recent.get("b", 161.0) is None  # past the window
    assert recent.get("d", 161.0) is not None


async def _open(redis_url: str, spool: Path) -> TransitLog:
    tl = TransitLog(
        redis_url=redis_url,
        keys=Keys("g"),
        spool_root=spool,
        spool_max_bytes=1 << 20,
        write_timeout_s=2,
        dedup_window_s=3600,
    )
    await tl.start()

    async def ready() -> bool:
        return tl.redis_ok

    await eventually(ready)
    return tl


async def test_a_group_with_events_another_replica_recorded(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    gate = demo[1].gates["PD-03"]
    a = await _open(redis_server.url, tmp_path / "a")
    b = await _open(redis_server.url, tmp_path / "b")
    try:
        (first,) = await a.log([_transit("e1")], [gate], [_verdict("e1")], TS)
        assert (a.groups, a.written_redis) == (1, 1)
        # On replica b, in one group: e1 again (a retry: the standing read), e1 with another
        # plate (a correction, decided after the retry), e2 (new).
        out = await b.log(
            [_transit("e1"), _transit("e1", "AB123CE"), _transit("e2")],
            [gate] * 3,
            [_verdict("e1"), _verdict("e1", "AB123CE", verdict="pending"), _verdict("e2")],
            TS,
        )
        retry, corrected, new = out
        assert isinstance(retry, Seen) and retry.id == first and retry.plate == "AB123CD"
        assert corrected == first  # the passage's transit id
        assert new == transit_id("cam-1", "e2", TS)
        assert (b.duplicates, b.corrections, b.written_redis) == (1, 1, 2)
        # e2 and the correction are remembered by b now: a retry of either is answered
        # without Redis, through the one-by-one path.
        again = await b.log([_transit("e2")], [gate], [_verdict("e2")], TS)
        assert isinstance(again[0], Seen) and again[0].id == new
        # A group only of new events is the common path: one call, ids as built.
        fresh = [_transit(f"n{i}") for i in range(5)]
        ids = await b.log(fresh, [gate] * 5, [_verdict(f"n{i}") for i in range(5)], TS)
        assert ids == [transit_id("cam-1", f"n{i}", TS) for i in range(5)]
    finally:
        await a.stop()
        await b.stop()
    r = redis.Redis.from_url(redis_server.url)
    records = [DECODE_RECORD(f[b"r"]) for _, f in r.xrange(Keys("g").transits)]
    r.close()
    assert [(x.id, x.event_id, x.plate, x.earlier) for x in records] == [
        (first, "e1", "AB123CD", []),
        (new, "e2", "AB123CD", []),  # the correction waited for the retry's decision
        (first, "e1", "AB123CE", ["AB123CD"]),
        *((transit_id("cam-1", f"n{i}", TS), f"n{i}", "AB123CD", []) for i in range(5)),
    ]


async def test_a_request_of_no_transits_is_answered(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    # A batch may be empty: nothing to write, and nothing to wait for either.
    gate = demo[1].gates["PD-03"]
    tl = await _open(redis_server.url, tmp_path / "s")
    try:
        assert await tl.log([], [], [], TS) == []
        group = Group()
        group.waiters.append((asyncio.get_running_loop().create_future(), 0, 0))
        assert group and not len(group)  # gathered: a waiter, no transit
        assert await tl.log([_transit("e")], [gate], [_verdict("e")], TS) == [
            transit_id("cam-1", "e", TS)
        ]
    finally:
        await tl.stop()
