"""One group commit's transits as the log sends them: flat lists of their transit ids, dedup
keys, encoded records and encoded `Seen`s, and the requests waiting for them.

Between the verdict and Redis's reply a transit is no object of its own: its record is
encoded once, straight from the `Transit`, its gate and its `Verdict` (a native post judged
natively: from its decoded fields and the Judge's, `add_one`), into the group's lists, which
go to Redis as one Lua call (commit.py). Only a group the common path cannot take (a
remembered event, two reads of one event, Redis away) is decoded back into `TransitRecord`s
and decided one by one (log.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final, Protocol

from ..core.rules import Gate
from ..core.verdict import Verdict
from .record import (
    ENCODE,
    MAX_RECORD,
    NO_FIELDS,
    Seen,
    Transit,
    TransitRecord,
    encode_record,
    identity,
)

# What a request gets back per transit: the transit id it stands under (new, a correction:
# the passage's id, a new passage), or a retry's standing read, whose verdict it answers.
Outcome = str | Seen

NO_EARLIER: Final[list[str]] = []  # a new read replaces none (encoded, never changed)

# A transit judged natively (`Judge.logged`, core/judge.py): the answer's body (with the
# transit id), the (verdict, reason) counter key, then the record's plate, permits, index
# revision and grace_until (epoch seconds).
Judged = tuple[bytes, tuple[str, str], str, list[str], int, int | None]


class Read(Protocol):
    """A native transit as decoded (http.schemas.TransitIn): what its record keeps of it."""

    camera: str
    gate: str
    event_id: str
    plate: str  # the read as sent
    confidence: float | None
    country: str | None


class Group:
    __slots__ = ("digests", "frames", "ids", "seens", "waiters")

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.digests: list[str] = []  # dedup_key per transit
        self.frames: list[bytes] = []  # encode_record per transit: what the stream gets
        self.seens: list[bytes] = []  # the encoded Seen: what the dedup key gets
        # (future, start, end): a request's transits are ids[start:end]; its future gets
        # None when all were written as built (the common case: nothing per transit to
        # send back), else their outcomes.
        self.waiters: list[tuple[asyncio.Future[Any], int, int]] = []

    def __len__(self) -> int:
        return len(self.frames)

    def __bool__(self) -> bool:  # anyone waiting, even for no transit, must get an answer
        return bool(self.waiters)

    def wait(self, start: int) -> asyncio.Future[list[Outcome] | None]:
        """A request's future for its transits, those added from `start` on."""
        # One future per request: a future shared by the group would be cancelled for all
        # when one waiting request is (a task's cancellation cancels what it awaits).
        fut: asyncio.Future[list[Outcome] | None] = asyncio.get_running_loop().create_future()
        self.waiters.append((fut, start, len(self.frames)))
        return fut

    def distinct(self, most: int) -> bool:
        """At most `most` transits, no two of one camera event (which must be decided one
        after the other: the second against what the first left)."""
        return len(self.digests) <= most and len(set(self.digests)) == len(self.digests)

    def add(
        self,
        transits: Sequence[Transit],
        gates: Sequence[Gate],
        verdicts: Sequence[Verdict],
        received: float,
    ) -> list[str]:
        """Encode the transits' records into the group; their transit ids. All or nothing:
        a transit that fails to encode leaves the group as it was."""
        start = len(self.ids)
        ids, digests, frames, seens = self.ids, self.digests, self.frames, self.seens
        try:
            for t, gate, v in zip(transits, gates, verdicts, strict=True):
                event_id = v.event_id or ""
                tid, digest = identity(t.camera, event_id, t.ts)
                grace = v.grace_until
                until = None if grace is None else int(grace.timestamp())
                rec = TransitRecord(
                    tid,
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
                    until,
                    t.confidence,
                    t.country,
                    NO_FIELDS if t.fields is None else t.fields,  # type: ignore[arg-type]
                )
                frame = ENCODE(rec)  # encode_record's common case, without the call
                frames.append(frame if len(frame) <= MAX_RECORD else encode_record(rec))
                # seen_of(rec), encoded: a tuple encodes as the array_like Seen does, byte
                # for byte (tests/transits/test_group.py), without building the Seen.
                seen = (
                    tid,
                    v.verdict,
                    v.reason,
                    v.permits,
                    v.index_revision,
                    until,
                    v.plate,
                    t.ts,
                    NO_EARLIER,
                )
                seens.append(ENCODE(seen))
                ids.append(tid)
                digests.append(digest)
        except BaseException:  # all or nothing: no transit of a failed request is written
            for column in (ids, digests, frames, seens):
                del column[start:]
            raise
        return ids[start:]

    def add_one(
        self,
        t: Read,
        ts: float,
        gate: Gate,
        ident: tuple[str, str],
        judged: Judged,
        received: float,
    ) -> int:
        """`add` of one native transit (no vendor fields) judged natively: its record and
        Seen from the Judge's fields (`Judge.logged`) under `ident` (record.identity), the
        same bytes, without a Transit, a Verdict or a TransitRecord. Its place in the group."""
        tid, digest = ident
        _, (verdict, reason), plate, permits, revision, until = judged
        # A tuple encodes as the array_like TransitRecord does (it omits no field: vendor
        # nil, no earlier reads), byte for byte (tests/transits/test_add_one.py); no vendor
        # fields, so never past MAX_RECORD's cut.
        record = (
            tid,
            t.camera,
            t.event_id,
            gate.code,
            gate.zone,
            plate,
            t.plate,
            ts,
            received,
            verdict,
            reason,
            permits,
            revision,
            until,
            t.confidence,
            t.country,
            NO_FIELDS,
            NO_EARLIER,
        )
        frame = ENCODE(record)
        seen = ENCODE((tid, verdict, reason, permits, revision, until, plate, ts, NO_EARLIER))
        self.ids.append(tid)
        self.digests.append(digest)
        self.frames.append(frame)
        self.seens.append(seen)
        return len(self.ids) - 1
