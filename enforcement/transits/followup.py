"""The follow-up worker: turns logged transits into confirmed violations, review items, or
nothing; and applies retention.

It reads the transit stream in a consumer group (at-least-once; every step is idempotent, so a
crash or a second worker repeats work but never doubles it):

- `allowed`, `not_enforced`: nothing to do; the record expires with `retention.allowed`.
- `pending`: held until its zone's grace period has passed (permits may be registered after
  the fact), then re-checked against the index as of the transit instant, permits issued
  since included: covered -> discarded; still uncovered -> a confirmed violation (at most one
  per plate, zone and local calendar day, violations.py); a doubt -> review.
- `review` for `index_stale` (judged on an index known to be behind): held and re-checked
  like a pending one, never confirmed as it stands. Other `review` reasons go to the review
  queue.
- a correction (a later read of the same passage, passages.py): the read it replaces no
  longer stands (no longer held, its review item dropped), and the new read is taken as
  above. If a violation was already confirmed on a read it replaces, that violation leaves
  the violations, with its other transits, for the review queue
  (`corrected_after_confirmation`): a person decides.

Nothing is confirmed on an index that is itself stale or too old: decisions wait for a good
one. Keys (named in `enforcement.keys`), besides those of log.py and violations.py:

    {p}:followup:held     hash: transit id -> msgpack TransitRecord awaiting its grace period
    {p}:followup:due      sorted set: transit id by the instant it may be decided
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any, Final

import redis.asyncio as aredis

from ..core.checker import Checker
from ..core.live import IndexHolder, LiveIndex
from ..core.plates import normalise
from ..core.rules import Rules
from ..core.verdict import ALLOWED, NOT_ENFORCED, PENDING, REVIEW
from ..keys import Keys
from .record import DECODE_RECORD, ENCODE, TransitRecord
from .violations import Violations

log = logging.getLogger(__name__)

GROUP: Final = "followup"
CLAIM_IDLE_MS: Final = 60_000  # entries a dead consumer read but never acknowledged
BATCH: Final = 500
RETENTION_EVERY_S: Final = 60.0


class FollowUp:
    def __init__(
        self,
        redis: aredis.Redis,
        keys: Keys,
        rules: Rules,
        checker: Checker,
        holder: IndexHolder,
        *,
        retention_allowed_s: int,
        retention_violations_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis, self.rules = redis, rules
        self.checker, self.holder, self.clock = checker, holder, clock
        self.retention_allowed_s = retention_allowed_s
        self.retention_violations_s = retention_violations_s
        self.stream, self.held, self.due = keys.transits, keys.followup_held, keys.followup_due
        self.violations = Violations(redis, keys, rules.clock)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.counts = {
            "confirmed": 0,
            "discarded": 0,
            "reviewed": 0,
            "held": 0,
            "deferred": 0,
            "corrected": 0,
            "withdrawn": 0,
        }
        self.last_error: str | None = None
        self.stopping = False

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except aredis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- reading the stream ----------------------------------------------------------------

    async def consume(self, block_ms: int | None = 1000) -> int:
        """Take the next entries (first those a dead consumer left unacknowledged)."""
        _, claimed, *_ = await self.redis.xautoclaim(
            self.stream, GROUP, self.consumer, CLAIM_IDLE_MS, "0-0", count=BATCH
        )
        entries = list(claimed)
        if not entries:
            reply: Any = await self.redis.xreadgroup(
                GROUP, self.consumer, {self.stream: ">"}, count=BATCH, block=block_ms
            )
            entries = reply[0][1] if reply else []
        if not entries:
            return 0
        records = [DECODE_RECORD(fields[b"r"]) for _, fields in entries if fields]
        # A correction after a violation was confirmed on an earlier read: the violation goes
        # to a person (its other transits too), and the corrected read is no fine by itself.
        withdrawn = {rec.id for rec in records if rec.earlier and await self._withdraw(rec)}
        async with self.redis.pipeline(transaction=True) as p:  # all of it, or none of it
            for rec in records:
                if rec.earlier:  # a correction: the read it replaces no longer stands
                    p.hdel(self.held, rec.id)
                    p.zrem(self.due, rec.id)
                    self.counts["corrected"] += 1
                    if rec.id in withdrawn:
                        continue  # in review, with the violation it withdrew
                    self.violations.unqueue_review(p, rec.id)
                stale = rec.verdict == REVIEW and rec.reason == "index_stale"
                if rec.verdict == PENDING or stale:
                    p.hset(self.held, rec.id, ENCODE(rec))
                    p.zadd(self.due, {rec.id: self._due_at(rec)})
                    self.counts["held"] += 1
                elif rec.verdict == REVIEW:
                    self.violations.queue_review(
                        p, rec, rec.reason, rec.revision, earlier=rec.earlier
                    )
                    self.counts["reviewed"] += 1
            p.xack(self.stream, GROUP, *(entry_id for entry_id, _ in entries))
            await p.execute()
        return len(entries)

    async def _withdraw(self, rec: TransitRecord) -> bool:
        """Send to review the violation an earlier read of `rec`'s passage was confirmed in."""
        live = self.holder.current
        revision = live.revision if live is not None else rec.revision
        for plate in rec.earlier:
            others = await self.violations.withdraw(rec, plate)
            if others is not None:
                await self.violations.to_review(
                    rec,
                    "corrected_after_confirmation",
                    revision,
                    earlier=rec.earlier,
                    withdrawn=others,
                )
                self.counts["withdrawn"] += 1
                return True
        return False

    def _due_at(self, rec: TransitRecord) -> float:
        if rec.grace_until is not None:
            return float(rec.grace_until)
        zone = self.rules.zones.get(rec.zone)
        return rec.ts + (zone.grace_s if zone else 0)

    # -- deciding --------------------------------------------------------------------------

    def _trusted_index(self) -> LiveIndex | None:
        live = self.holder.current
        if live is None or live.overlay.stale is not None:
            return None
        if time.time() - live.fresh_at > self.checker.index_max_age_s:  # wall time, as served
            return None
        return live

    async def decide_due(self) -> int:
        """Decide the held transits whose grace period has passed; how many were decided."""
        ids: list[bytes] = await self.redis.zrangebyscore(  # type: ignore[assignment]
            self.due, "-inf", self.clock(), start=0, num=BATCH
        )
        if not ids:
            return 0
        live = self._trusted_index()
        if live is None:  # never confirm on an index that may be missing permits
            self.counts["deferred"] += len(ids)
            return 0
        blobs: list[Any] = await self.redis.hmget(self.held, ids)
        decided = []
        for tid, blob in zip(ids, blobs, strict=True):
            if blob is not None and not await self._decide(live, DECODE_RECORD(blob)):
                continue  # not decidable yet: stays held
            decided.append(tid)
        if decided:
            async with self.redis.pipeline(transaction=True) as p:
                p.hdel(self.held, *decided)
                p.zrem(self.due, *decided)
                await p.execute()
        return len(decided)

    async def _decide(self, live: LiveIndex, rec: TransitRecord) -> bool:
        gate = self.rules.gates.get(rec.gate)
        if gate is None:  # the gate left the configuration since: a person decides
            await self.violations.to_review(rec, "unknown_gate", live.revision)
            self.counts["reviewed"] += 1
            return True
        # `now` = when it was received: the clock and age checks as the camera met them.
        v = self.checker.check(
            live,
            normalise(rec.raw, rec.country),
            rec.ts,
            gate,
            rec.confidence,
            rec.received,
            rec.event_id,
        )
        if v.verdict in (ALLOWED, NOT_ENFORCED):
            self.counts["discarded"] += 1
        elif v.verdict == PENDING:
            await self.violations.confirm(rec, v.reason, live.revision)
            self.counts["confirmed"] += 1
        elif v.reason == "index_stale":
            return False
        else:
            await self.violations.to_review(rec, v.reason, live.revision)
            self.counts["reviewed"] += 1
        return True

    # -- retention -------------------------------------------------------------------------

    async def apply_retention(self) -> None:
        """Trim the stream to `retention.allowed`, but never past what this group has read
        and acknowledged; expire violations and review items past `retention.violations`."""
        now = self.clock()
        cutoff_ms = int((now - self.retention_allowed_s) * 1000)
        minid = f"{cutoff_ms}-0"
        groups = await self.redis.xinfo_groups(self.stream)
        ours = next((g for g in groups if g["name"].decode() == GROUP), None)
        if ours is None:
            return
        minid = _min_id(minid, _next_id(ours["last-delivered-id"].decode()))
        pending = await self.redis.xpending(self.stream, GROUP)
        if pending["pending"]:
            minid = _min_id(minid, pending["min"].decode())
        await self.redis.xtrim(self.stream, minid=minid, approximate=False)
        await self.violations.expire(now - self.retention_violations_s)

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        next_retention = 0.0
        delay = 0.5
        while not self.stopping:  # redis-py may swallow a cancellation: check the flag too
            try:
                await self.ensure_group()
                while not self.stopping:
                    await self.consume(block_ms=500)
                    await self.decide_due()
                    if time.monotonic() >= next_retention:
                        await self.apply_retention()
                        next_retention = time.monotonic() + RETENTION_EVERY_S
                    self.last_error, delay = None, 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A cancellation racing redis-py's timeout comes out as another exception
                # (Python 3.11's asyncio.timeout): honour it, or shutdown hangs.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc
                if self.last_error is None:
                    log.warning("follow-up: %s; retrying", exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def status(self) -> dict[str, object]:
        return {**self.counts, "last_error": self.last_error}


def _parse(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _next_id(entry_id: str) -> str:
    ms, seq = _parse(entry_id)
    return f"{ms}-{seq + 1}"


def _min_id(a: str, b: str) -> str:
    return a if _parse(a) <= _parse(b) else b


@contextlib.asynccontextmanager
async def running(followup: FollowUp):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(followup.run(), name="followup")
    try:
        yield followup
    finally:
        followup.stopping = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
