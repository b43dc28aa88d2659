"""The review queue as a person works it: listing with filters and paging, and decisions.

The follow-up fills the queue (`{p}:review`, `{p}:review:index`, violations.py); the desk
(http/review.py) reads and empties it. A decision is prepared first (the item read, the
decision checked against the live index: `prepare`), then audited by the caller, then applied
by one Lua script (`apply`) that takes the item only if it is still what was read:

- `confirm`: a violation under the one-per-plate-zone-day rule (violations.py's merge, in the
  same script): a second confirmed transit of the plate, zone and day joins the violation
  already there. Refused (422) for an unreadable read, an inactive gate, or a plate a permit
  covers at that instant (dismiss, or correct the plate).
- `dismiss`: the item leaves the queue; the reason is kept in the decision and the audit.
- `correct`: the plate a person read is judged again (the live index, the transit instant,
  the instant it arrived) and written to the transit stream as a correction of the passage
  (passages.py: same transit id, the replaced reads in `earlier`), which the follow-up takes
  as it takes a camera's correction: allowed is discarded, pending is held until its grace
  period and confirmed, a violation confirmed on a replaced read is withdrawn. A corrected
  read that is still a doubt (a near-match, a late delivery) stays in the queue, with the
  new read, for another decision.

Decided items leave the queue; their decision is kept in `{p}:review:decided` (expiring with
`retention.violations`), so deciding an item no longer queued is 409, never a silent repeat.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Final, NamedTuple

import msgspec
import redis.asyncio as aredis

from ..core.checker import Checker
from ..core.live import IndexHolder
from ..core.plates import normalise
from ..core.rules import Rules
from ..core.verdict import MISS_REASONS, REVIEW, Verdict
from ..keys import Keys
from .record import ENCODE, NO_FIELDS, TransitRecord, encode_record
from .violations import MERGE_LUA, ReviewItem, Violation, Violations

DECISIONS: Final = ("confirm", "dismiss", "correct")
SCAN_CHUNK: Final = 500  # queue entries read per round while filtering a page
MAX_SCAN: Final = 20_000  # entries one page may look at; then it ends with a cursor


class Decision(msgspec.Struct, omit_defaults=True):
    """A decision as kept in `{p}:review:decided`."""

    transit_id: str
    decision: str
    reason: str
    actor: str  # the API key id or `user:<name>`
    at: dt.datetime
    person: str | None = None
    plate: str | None = None  # correct: the plate set
    violation: str | None = None  # confirm: the violation's key


class Filter(NamedTuple):
    gate: str | None = None
    camera: str | None = None
    reason: str | None = None
    since: float | None = None  # capture instant, epoch seconds, inclusive
    until: float | None = None  # exclusive

    def admits(self, item: ReviewItem) -> bool:
        return (
            (self.gate is None or item.gate == self.gate)
            and (self.camera is None or item.camera == self.camera)
            and (self.reason is None or item.reason == self.reason)
        )


class Refused(Exception):
    """The decision cannot be taken as asked (422 naming `field`)."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail)
        self.detail, self.field = detail, field


class NotQueued(Exception):
    """No such item in the queue; `decided` if it was decided already (409), else 404."""

    def __init__(self, decided: Decision | None) -> None:
        super().__init__("decided" if decided else "unknown")
        self.decided = decided


class Untrusted(Exception):
    """The live index is stale or too old to back a decision (503)."""


class Plan(NamedTuple):
    """A decision checked and ready to apply."""

    item: ReviewItem
    blob: bytes  # the item as read: applied only if it is still that
    decision: str
    reason: str
    plate: str | None = None  # correct: the plate as typed
    violation: tuple[str, Violation] | None = None  # confirm
    record: TransitRecord | None = None  # correct: the corrected read
    verdict: Verdict | None = None  # correct: its verdict
    requeue: ReviewItem | None = None  # correct, still a doubt: the item with the new read


class Outcome(NamedTuple):
    decision: Decision
    violation: Violation | None
    verdict: Verdict | None


_JSON: Final = msgspec.json.Encoder()
_ITEM: Final = msgspec.json.Decoder(ReviewItem)
_DECISION: Final = msgspec.json.Decoder(Decision)

# KEYS: review hash, review index, decided hash, decided index, violations hash, violations
# index, violation ids set, transits stream. ARGV: transit id, the item as read, the decision,
# its score (the transit instant), mode, then per mode: confirm: violation key, JSON, first-ts
# score; correct: the record, the item to queue again ("" for none).
# Returns {1} applied, {0} not queued (with the decision, if any), {3} changed since read.
_APPLY: Final = (
    """
local item = redis.call('HGET', KEYS[1], ARGV[1])
if not item then
  return {0, redis.call('HGET', KEYS[3], ARGV[1])}
end
if item ~= ARGV[2] then return {3} end
local mode = ARGV[5]
if mode == 'confirm' then
  local vh, vi, ids = KEYS[5], KEYS[6], KEYS[7]
  local key, json, score, tid = ARGV[6], ARGV[7], ARGV[8], ARGV[1]
"""
    + MERGE_LUA
    + """
elseif mode == 'correct' then
  redis.call('XADD', KEYS[8], '*', 'r', ARGV[6])
end
if mode == 'correct' and ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[7])
else
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return {1}
"""
)


class ReviewQueue:
    def __init__(
        self,
        redis: aredis.Redis,
        keys: Keys,
        violations: Violations,
        rules: Rules,
        checker: Checker,
        holder: IndexHolder,
    ) -> None:
        self.redis, self.keys, self.violations = redis, keys, violations
        self.rules, self.checker, self.holder = rules, checker, holder
        self._apply = redis.register_script(_APPLY)

    # -- listing ---------------------------------------------------------------------------

    async def page(
        self, f: Filter, cursor: tuple[float, str] | None, limit: int
    ) -> tuple[list[ReviewItem], tuple[float, str] | None]:
        """Items by capture instant (then transit id) after `cursor`, filtered; and the
        cursor of the next page (None: no more). One page looks at MAX_SCAN entries at most:
        a filter that matches little ends a page early, with a cursor to go on from."""
        low: float | str = "-inf" if f.since is None else f.since
        if cursor is not None:
            low = cursor[0]
        high = "+inf" if f.until is None else f"({f.until}"
        out: list[ReviewItem] = []
        offset = scanned = 0
        last: tuple[float, str] | None = None
        while scanned < MAX_SCAN:
            chunk: list[tuple[bytes, float]] = await self.redis.zrangebyscore(  # type: ignore[assignment]
                self.keys.review_index, low, high, start=offset, num=SCAN_CHUNK, withscores=True
            )
            if not chunk:
                return out, None
            offset += len(chunk)
            scanned += len(chunk)
            entries = [(score, tid.decode()) for tid, score in chunk]
            if cursor is not None:
                entries = [e for e in entries if e > cursor]
            if not entries:
                continue
            blobs: list[bytes | None] = await self.redis.hmget(  # type: ignore[assignment]
                self.keys.review, [tid for _, tid in entries]
            )
            for (score, tid), blob in zip(entries, blobs, strict=True):
                last = (score, tid)
                if blob is None:  # decided meanwhile
                    continue
                item = _ITEM.decode(blob)
                if f.admits(item):
                    out.append(item)
                    if len(out) == limit:
                        return out, last
        return out, last

    async def read(self, transit_id: str) -> tuple[bytes | None, Decision | None]:
        """The queued item as stored (None: not queued), and its last decision, if any."""
        async with self.redis.pipeline(transaction=False) as p:
            p.hget(self.keys.review, transit_id)
            p.hget(self.keys.review_decided, transit_id)
            blob, decided = await p.execute()
        return blob, None if decided is None else _DECISION.decode(decided)

    # -- deciding --------------------------------------------------------------------------

    async def prepare(self, transit_id: str, decision: str, reason: str, plate: str | None) -> Plan:
        """Check the decision against the item and the live index; NotQueued, Refused,
        Untrusted, or the plan to apply."""
        blob, decided = await self.read(transit_id)
        if blob is None:
            raise NotQueued(decided)
        item = _ITEM.decode(blob)
        gate = self.rules.gates.get(item.gate)
        if decision == "dismiss":
            return Plan(item, blob, decision, reason)
        if gate is None:
            raise Refused(
                f"gate {item.gate!r} is no longer configured: the read cannot be judged; dismiss",
                "decision",
            )
        live = self.holder.live()
        if live.overlay.stale is not None or time.time() - live.fresh_at > (
            self.checker.index_max_age_s
        ):
            raise Untrusted("the permit index is stale: no decision is checked against it")
        ts = item.ts.timestamp()
        t = int(ts)
        if decision == "confirm":
            if not item.plate:
                raise Refused("an unreadable read cannot be confirmed: correct the plate", "plate")
            if not gate.always_active and not self.rules.gate_active(gate, t):
                raise Refused("the gate was not active at that instant: dismiss", "decision")
            covering, miss = self.checker.cover(live, item.plate, t, live.gate_masks[gate.code])
            if covering:
                raise Refused(
                    f"a permit covers the plate at that instant ({', '.join(covering)}): "
                    "dismiss, or correct the plate",
                    "decision",
                )
            rec = self._record_of(item, item.plate, item.raw, ts)
            return Plan(
                item,
                blob,
                decision,
                reason,
                violation=self.violations.violation_of(rec, MISS_REASONS[miss], live.revision),
            )
        assert plate is not None
        read = normalise(plate, item.country)
        if not read.text:
            raise Refused("not a plate: 1 to 11 letters and digits", "plate")
        if read.text == item.plate:
            raise Refused("the plate as read already: confirm or dismiss instead", "plate")
        received = item.received or ts  # an item queued before arrivals were kept: as read
        v = self.checker.check(live, read, ts, gate, None, received, item.event_id or None)
        v.transit_id = item.transit_id
        rec = self._record_of(item, v.plate, plate, ts, v, received)
        requeue = None
        if v.verdict == REVIEW and v.reason != "index_stale":  # index_stale: the follow-up
            requeue = self.violations.item_of(rec, v.reason, v.index_revision, earlier=rec.earlier)
        return Plan(item, blob, decision, reason, plate, None, rec, v, requeue)

    def _record_of(
        self,
        item: ReviewItem,
        plate: str,
        raw: str,
        ts: float,
        v: Verdict | None = None,
        received: float | None = None,
    ) -> TransitRecord:
        """The transit as a record again: the confirmed read, or a person's correction."""
        vendor = NO_FIELDS if item.kept is None else msgspec.Raw(ENCODE(item.kept))
        rec = TransitRecord(
            item.transit_id,
            item.camera,
            item.event_id,
            item.gate,
            item.zone,
            plate,
            raw,
            ts,
            received or item.received or ts,
            REVIEW,
            item.reason,
            revision=item.index_revision,
            confidence=item.confidence,
            country=item.country,
            vendor=vendor,
        )
        if v is None:
            return rec
        grace = None if v.grace_until is None else int(v.grace_until.timestamp())
        earlier = [*item.earlier, item.plate] if item.plate else list(item.earlier)
        return msgspec.structs.replace(
            rec,
            verdict=v.verdict,
            reason=v.reason,
            permits=v.permits,
            revision=v.index_revision,
            grace_until=grace,
            confidence=None,  # a person's read
            earlier=earlier,
        )

    async def apply(self, plan: Plan, actor: str, person: str | None) -> Outcome:
        """Apply a prepared decision, atomically. NotQueued: decided (or expired) meanwhile;
        Changed: the item changed since it was read (a correction arrived): read it again."""
        item = plan.item
        decision = Decision(
            item.transit_id,
            plan.decision,
            plan.reason,
            actor,
            dt.datetime.now(dt.UTC),
            person,
            None if plan.record is None else plan.record.plate,
            None if plan.violation is None else plan.violation[0],
        )
        args: list[Any] = [
            item.transit_id,
            plan.blob,
            _JSON.encode(decision),
            item.ts.timestamp(),
            plan.decision,
        ]
        vkey = "-"
        if plan.violation is not None:
            vkey, v = plan.violation
            args += [vkey, _JSON.encode(v), item.ts.timestamp()]
        elif plan.record is not None:
            requeue = b"" if plan.requeue is None else _JSON.encode(plan.requeue)
            args += [encode_record(plan.record), requeue]
        k = self.keys
        keys = [
            k.review,
            k.review_index,
            k.review_decided,
            k.review_decided_index,
            k.violations,
            k.violations_index,
            k.violation_ids(vkey),
            k.transits,
        ]
        reply = await self._apply(keys=keys, args=args)
        if reply[0] == 0:
            blob = reply[1] if len(reply) > 1 else None
            raise NotQueued(None if not blob else _DECISION.decode(blob))
        if reply[0] == 3:
            raise Changed()
        violation = None if plan.violation is None else await self.violations.get(vkey)
        return Outcome(decision, violation, plan.verdict)


class Changed(Exception):
    """The item changed between its read and the decision (409: read it again)."""
