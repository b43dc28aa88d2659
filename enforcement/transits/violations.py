"""Confirmed violations and the review queue in Redis: writing, paging, exporting, expiring.

At most one violation per plate, zone and calendar day in the city's time zone (Codice della
Strada art. 198 c. 2-bis: repeated entries into one ZTL on one day are one violation). Every
transit of that day is attached to it; the first one (earliest capture) names its gate.

Keys (named in `enforcement.keys`):

    {p}:violations             hash: violation key -> JSON (Violation without transit_ids)
    {p}:violations:index       sorted set: violation key by its first transit's instant
    {p}:violation:ids:{key}    set of the transit ids of that plate, zone and day
    {p}:review                 hash: transit id -> JSON ReviewItem
    {p}:review:index           sorted set: transit id by capture instant

The violation key is `zone|YYYY-MM-DD|plate`. Writes are idempotent (the follow-up worker is
at-least-once): re-adding a transit changes nothing, and an earlier transit of the same day
replaces the recorded first one whichever order they arrive in.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator
from typing import Any, Final

import msgspec
import redis.asyncio as aredis

from ..core.localtime import LocalClock
from ..csvcells import safe_cell
from ..keys import Keys
from .evidence import evidence_of, kept_fields
from .record import TransitRecord


class Violation(msgspec.Struct, omit_defaults=False):
    plate: str
    zone: str
    day: str  # the local calendar day, YYYY-MM-DD
    first_transit: str  # transit id
    first_ts: dt.datetime
    gate: str
    camera: str
    index_revision: int  # the index the violation was confirmed on
    reason: str  # why no permit covered it (no_permit, expired, outside_window, ...)
    transit_ids: list[str] = []
    # The first transit's pictures at the camera or its vendor (evidence.py); None: none kept
    evidence: str | None = None


class ViolationPage(msgspec.Struct):
    """GET /v1/violations: a page, and the cursor of the next one (None: the last page)."""

    violations: list[Violation]
    next_cursor: str | None


class ReviewItem(msgspec.Struct):
    transit_id: str
    plate: str
    raw: str
    zone: str
    gate: str
    camera: str
    ts: dt.datetime
    reason: str
    confidence: float | None
    index_revision: int
    earlier: list[str] = []  # a corrected read: the reads it replaced, oldest first
    withdrawn: list[str] = []  # a violation withdrawn for this: its transit ids
    # What a person deciding needs besides the read (http/review.py): appended, so items
    # queued before them still decode.
    event_id: str = ""
    received: float = 0.0  # when Varco judged it, epoch seconds (0: queued before it was kept)
    country: str | None = None
    kept: dict[str, Any] | None = None  # the vendor's kept fields (record.py), as plain values
    evidence: str | None = None


_JSON: Final = msgspec.json.Encoder()
_DECODE_VIOLATION: Final = msgspec.json.Decoder(Violation)

# KEYS: violations hash, index zset, ids set. ARGV: key. If the violation lists the transit
# ARGV[2], it is removed whole; returns its transit ids then, else false.
_WITHDRAW: Final = """
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 0 then
  return false
end
local ids = redis.call('SMEMBERS', KEYS[3])
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
return ids
"""

# One violation per plate, zone and day, as Lua over locals: keys `vh` (violations hash),
# `vi` (index zset), `ids` (its transit ids set); values `key`, `json`, `score` (first
# transit's instant), `tid`. The earliest transit's record stands. Run by _MERGE and by the
# review queue's confirm (review.py), each inside its own atomic script.
MERGE_LUA: Final = """
local known = redis.call('ZSCORE', vi, key)
if (not known) or tonumber(known) > tonumber(score) then
  redis.call('HSET', vh, key, json)
  redis.call('ZADD', vi, score, key)
end
redis.call('SADD', ids, tid)
"""
# KEYS: violations hash, index zset, ids set. ARGV: key, JSON, first-ts score, transit id.
_MERGE: Final = (
    "local vh, vi, ids = KEYS[1], KEYS[2], KEYS[3]\n"
    "local key, json, score, tid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n" + MERGE_LUA + "return 1\n"
)


class Violations:
    def __init__(self, redis: aredis.Redis, keys: Keys, clock: LocalClock) -> None:
        self.redis, self.keys, self.clock = redis, keys, clock
        self.hash, self.index = self.keys.violations, self.keys.violations_index
        self.review_hash, self.review_index = self.keys.review, self.keys.review_index
        self._merge = redis.register_script(_MERGE)
        self._withdraw = redis.register_script(_WITHDRAW)

    def key_of(self, rec: TransitRecord, plate: str | None = None) -> str:
        """`zone|YYYY-MM-DD|plate` of the record (or of another `plate` read of it)."""
        day = self.clock.to_datetime(rec.ts).date().isoformat()
        return f"{rec.zone}|{day}|{rec.plate if plate is None else plate}"

    async def withdraw(self, rec: TransitRecord, plate: str) -> list[str] | None:
        """Remove the violation of `plate` on `rec`'s zone and day if it lists `rec`'s
        transit; its transit ids then (a person decides again), else None."""
        key = self.key_of(rec, plate)
        ids = await self._withdraw(
            keys=[self.hash, self.index, self.keys.violation_ids(key)], args=[key, rec.id]
        )
        return None if ids is None else sorted(i.decode() for i in ids)

    def violation_of(self, rec: TransitRecord, reason: str, revision: int) -> tuple[str, Violation]:
        """The violation `rec` makes (without its transit ids), and its key."""
        key = self.key_of(rec)
        v = Violation(
            rec.plate,
            rec.zone,
            key.split("|")[1],
            rec.id,
            self.clock.to_datetime(rec.ts),
            rec.gate,
            rec.camera,
            revision,
            reason,
            evidence=evidence_of(kept_fields(rec.vendor)),
        )
        return key, v

    async def confirm(self, rec: TransitRecord, reason: str, revision: int) -> str:
        key, v = self.violation_of(rec, reason, revision)
        await self._merge(
            keys=[self.hash, self.index, self.keys.violation_ids(key)],
            args=[key, _JSON.encode(v), rec.ts, rec.id],
        )
        return key

    async def get(self, key: str) -> Violation | None:
        """The violation of `key` (`zone|YYYY-MM-DD|plate`) with its transit ids, if any."""
        async with self.redis.pipeline(transaction=False) as p:
            p.hget(self.hash, key)
            p.smembers(self.keys.violation_ids(key))
            blob, ids = await p.execute()
        if blob is None:
            return None
        v = _DECODE_VIOLATION.decode(blob)
        v.transit_ids = sorted(i.decode() for i in ids)
        return v

    def item_of(
        self,
        rec: TransitRecord,
        reason: str,
        revision: int,
        *,
        earlier: list[str] | None = None,
        withdrawn: list[str] | None = None,
    ) -> ReviewItem:
        kept = kept_fields(rec.vendor)
        return ReviewItem(
            rec.id,
            rec.plate,
            rec.raw,
            rec.zone,
            rec.gate,
            rec.camera,
            self.clock.to_datetime(rec.ts),
            reason,
            rec.confidence,
            revision,
            earlier or [],
            withdrawn or [],
            rec.event_id,
            rec.received,
            rec.country,
            kept,
            evidence_of(kept),
        )

    def queue_review(
        self,
        p: Any,
        rec: TransitRecord,
        reason: str,
        revision: int,
        *,
        earlier: list[str] | None = None,
        withdrawn: list[str] | None = None,
    ) -> None:
        """Add the review item to pipeline `p` (the caller's transaction)."""
        item = self.item_of(rec, reason, revision, earlier=earlier, withdrawn=withdrawn)
        p.hset(self.review_hash, rec.id, _JSON.encode(item))
        p.zadd(self.review_index, {rec.id: rec.ts})

    def unqueue_review(self, p: Any, transit_id: str) -> None:
        """Drop the transit's review item in pipeline `p` (a correction replaced its read)."""
        p.hdel(self.review_hash, transit_id)
        p.zrem(self.review_index, transit_id)

    async def to_review(
        self,
        rec: TransitRecord,
        reason: str,
        revision: int,
        *,
        earlier: list[str] | None = None,
        withdrawn: list[str] | None = None,
    ) -> None:
        async with self.redis.pipeline(transaction=True) as p:
            self.queue_review(p, rec, reason, revision, earlier=earlier, withdrawn=withdrawn)
            await p.execute()

    async def page(
        self, start: float, end: float, offset: int, limit: int
    ) -> tuple[list[Violation], int | None]:
        """Violations whose first transit is in [start, end), by that instant; and the offset
        of the next page (None at the end)."""
        keys: list[bytes] = await self.redis.zrangebyscore(  # type: ignore[assignment]
            self.index, start, f"({end}", start=offset, num=limit + 1
        )
        more = len(keys) > limit
        keys = keys[:limit]
        out = []
        if keys:
            async with self.redis.pipeline(transaction=False) as p:
                p.hmget(self.hash, keys)
                for k in keys:
                    p.smembers(self.keys.violation_ids(k.decode()))
                replies = await p.execute()
            for blob, ids in zip(replies[0], replies[1:], strict=True):
                if blob is None:  # expired between the two reads
                    continue
                v = _DECODE_VIOLATION.decode(blob)
                v.transit_ids = sorted(i.decode() for i in ids)
                out.append(v)
        return out, (offset + limit if more else None)

    async def all(self, start: float, end: float, batch: int = 1000) -> AsyncIterator[Violation]:
        offset: int | None = 0
        while offset is not None:
            items, offset = await self.page(start, end, offset, batch)
            for v in items:
                yield v

    async def expire(self, cutoff: float) -> int:
        """Delete violations and review items whose first transit is older than `cutoff`."""
        removed = 0
        while True:
            keys: list[bytes] = await self.redis.zrangebyscore(  # type: ignore[assignment]
                self.index, "-inf", f"({cutoff}", start=0, num=1000
            )
            if not keys:
                break
            async with self.redis.pipeline(transaction=True) as p:
                p.hdel(self.hash, *keys)
                p.zrem(self.index, *keys)
                p.delete(*(self.keys.violation_ids(k.decode()) for k in keys))
                await p.execute()
            removed += len(keys)
        for hash_, index in (
            (self.review_hash, self.review_index),
            (self.keys.review_decided, self.keys.review_decided_index),  # the desk's decisions
        ):
            while True:
                ids: list[bytes] = await self.redis.zrangebyscore(  # type: ignore[assignment]
                    index, "-inf", f"({cutoff}", start=0, num=1000
                )
                if not ids:
                    break
                async with self.redis.pipeline(transaction=True) as p:
                    p.hdel(hash_, *ids)
                    p.zrem(index, *ids)
                    await p.execute()
                removed += len(ids)
        return removed


CSV_COLUMNS: Final = (
    "plate",
    "zone",
    "day",
    "first_ts",
    "gate",
    "camera",
    "first_transit",
    "transit_ids",
    "index_revision",
    "reason",
    "evidence",
)


def to_csv_rows(violations: list[Violation]) -> str:
    """The fines office's rows; no cell a spreadsheet would run (csvcells.py): a camera id
    or a plate of a record from before their checks could start with `=`."""
    out = io.StringIO()
    w = csv.writer(out, delimiter=";", lineterminator="\n")
    for v in violations:
        w.writerow(
            safe_cell(cell)
            for cell in (
                v.plate,
                v.zone,
                v.day,
                v.first_ts.isoformat(),
                v.gate,
                v.camera,
                v.first_transit,
                " ".join(v.transit_ids),
                v.index_revision,
                v.reason,
                v.evidence or "",
            )
        )
    return out.getvalue()


def csv_header() -> str:
    return ";".join(CSV_COLUMNS) + "\n"


def as_json(v: Violation) -> Any:
    return msgspec.to_builtins(v)
