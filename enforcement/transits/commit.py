"""Writing records to Redis, each decided against what Redis remembers of its camera event.

A group goes out in one RECORD call: every record whose event Redis does not remember is
written at once (the common case: one round trip, one fsync). For the others Redis returns
the passage's standing read; each is then a retry (nothing written), a correction or a new
passage (passages.py), the latter two written by REPLACE only if Redis still remembers what
the decision was made on, else decided again. Spooled records are replayed the same way, so
a correction made while Redis was away lands as one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

from ..keys import Keys
from .passages import Kind, resolve
from .record import (
    DECODE_RECORD,
    DECODE_SEEN,
    ENCODE,
    Seen,
    TransitRecord,
    dedup_key,
    encode_record,
    seen_of,
)
from .writer import RECORD, REPLACE, GroupWriter

MAX_GROUP: Final = 1000  # records per Lua call: Redis runs a script without interruption
MAX_REPLACE_ROUNDS: Final = 5  # REPLACE lost to another replica this often: give up (error)


class Logged(NamedTuple):
    """How the log took one record."""

    kind: Kind
    id: str  # the transit id it stands under (a correction: the passage's)
    retry: Seen | None  # a retry: the standing read, whose verdict the camera gets back
    seen: bytes | None  # what is now remembered of the event (None: nothing new)


def decided(kind: Kind, rec: TransitRecord, prior: Seen | None) -> Logged:
    if prior is not None and kind is Kind.RETRY:
        return Logged(kind, prior.id, prior, None)
    return Logged(kind, rec.id, None, ENCODE(seen_of(rec)))


class Committer:
    def __init__(
        self,
        writer: GroupWriter,
        keys: Keys,
        ttl_s: int,
        window_s: float,
        waitaof_ms: Callable[[float], int | None],
    ) -> None:
        self.writer, self.keys = writer, keys
        self.ttl_s, self.window_s = ttl_s, window_s
        self.waitaof_ms = waitaof_ms  # for a timeout: WAITAOF's, or None without WAITAOF

    async def commit(
        self,
        records: Sequence[TransitRecord],
        timeout_s: float,
        digests: Sequence[str] | None = None,
    ) -> list[Logged]:
        """Write `records` in order; how each was taken. `digests`: their events'
        `dedup_key`s, if the caller has them."""
        if digests is None:
            digests = [dedup_key(r.camera, r.event_id) for r in records]
        out: list[Logged | None] = [None] * len(records)
        async with asyncio.timeout(timeout_s):
            todo: Sequence[int] = range(len(records))
            while todo:
                # Two records of one event wait for each other: the second is decided
                # against what the first left.
                this_round: list[int] = []
                later: list[int] = []
                if len(todo) == len({digests[i] for i in todo}):  # the usual group
                    this_round = list(todo)
                else:
                    events: set[str] = set()
                    for i in todo:
                        (later if digests[i] in events else this_round).append(i)
                        events.add(digests[i])
                for start in range(0, len(this_round), MAX_GROUP):
                    part = this_round[start : start + MAX_GROUP]
                    seens = [ENCODE(seen_of(records[i])) for i in part]
                    replies = await self._record(
                        [records[i] for i in part], [digests[i] for i in part], seens, timeout_s
                    )
                    for i, seen, reply in zip(part, seens, replies, strict=True):
                        if reply is None:
                            out[i] = Logged(Kind.NEW, records[i].id, None, seen)
                        else:
                            out[i] = await self._decide(records[i], reply, timeout_s)
                todo = later
        return [x for x in out if x is not None]

    async def commit_group(
        self,
        ids: Sequence[str],
        digests: Sequence[str],
        frames: Sequence[bytes],
        seens: Sequence[bytes],
        timeout_s: float,
    ) -> list[Logged] | None:
        """The common group (at most MAX_GROUP records, no two of one event), as encoded:
        None when every record was written as it is (the usual reply), else how each was
        taken (a remembered event decided as in `commit`)."""
        async with asyncio.timeout(timeout_s):
            replies = await self._send(digests, frames, seens, timeout_s)
            if not any(replies):  # each reply None (written) or a Seen (never empty bytes)
                return None
            out = []
            for i, reply in enumerate(replies):
                if reply is None:
                    out.append(Logged(Kind.NEW, ids[i], None, seens[i]))
                else:
                    out.append(await self._decide(DECODE_RECORD(frames[i]), reply, timeout_s))
            return out

    async def _record(
        self,
        records: Sequence[TransitRecord],
        digests: Sequence[str],
        seens: Sequence[bytes],
        timeout_s: float,
    ) -> list[Any]:
        return await self._send(digests, [encode_record(r) for r in records], seens, timeout_s)

    async def _send(
        self,
        digests: Sequence[str],
        frames: Sequence[bytes],
        seens: Sequence[bytes],
        timeout_s: float,
    ) -> list[Any]:
        """One RECORD call: the replies, per record None (written) or the remembered Seen."""
        keys = [self.keys.transits, *map(self.keys.transit_seen, digests)]
        args = [self.ttl_s, *frames, *seens]
        return await self.writer.call(RECORD, keys, args, self.waitaof_ms(timeout_s))

    async def _decide(self, rec: TransitRecord, remembered: bytes, timeout_s: float) -> Logged:
        """`rec` against the passage Redis remembers: a retry, or written as a correction or
        a new passage (decided again while another replica changes it meanwhile)."""
        current: bytes = remembered
        for _ in range(MAX_REPLACE_ROUNDS):
            prior = DECODE_SEEN(current) if current else None
            kind, write = resolve(prior, rec, self.window_s)
            if write is None:
                return decided(kind, rec, prior)
            seen = ENCODE(seen_of(write))
            keys = [self.keys.transits, self._seen_key(write)]
            args = [self.ttl_s, current, seen, encode_record(write)]
            (reply,) = await self.writer.call(REPLACE, keys, args, self.waitaof_ms(timeout_s))
            if reply == 1:
                return Logged(kind, write.id, None, seen)
            current = b"" if reply == 0 else reply
        raise RuntimeError(f"the event's passage kept changing: {MAX_REPLACE_ROUNDS} tries")

    def _seen_key(self, rec: TransitRecord) -> str:
        return self.keys.transit_seen(dedup_key(rec.camera, rec.event_id))
