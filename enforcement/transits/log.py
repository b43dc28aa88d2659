"""The durable transit log: every transit is written before the camera gets its verdict.

Group commit: requests encode their records into the group being gathered (group.py); one
writer task sends the group as one Lua call (commit.py, writer.py). Redis (append-only,
`appendfsync always`) fsyncs once per event-loop turn, so a whole group costs one round trip
and one fsync, and a request never waits on more than the write in flight plus its own.

Each camera event is one passage (passages.py): a retry gets the standing verdict and writes
nothing, a correction is recorded under the passage's transit id with the reads it replaces,
a reused event id after a while is a new passage (commit.py writes them to Redis).

Acknowledged must survive `kill -9` of Redis and of the service, so on connecting the log
checks how Redis persists: `appendonly yes` + `appendfsync always`, or `WAITAOF` (Redis 7.2+)
after each write. A Redis that does neither, is unreachable, does not answer within
`transit_log.write_timeout_ms`, or refuses writes at its maxmemory (enforcement/memory.py),
gets nothing: records go to the local fsynced spool (spool.py), and are replayed in order once
Redis is back, durable and has room. While the spool holds anything, new records go to the
spool too, so the order is kept. A full spool refuses (503 with Retry-After); nothing is
dropped.

Keys (`enforcement.keys`): the stream `{p}:transits` (field `r`: a msgpack TransitRecord) and
`{p}:transit:seen:{hash}` (the passage's standing read, `Seen`, expiring after the dedup
window, or after `retention.allowed` if that is shorter: it holds a plate).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import OutOfMemoryError

from ..core.rules import Gate
from ..core.verdict import Verdict
from ..durable import NotDurable, describe, needs_waitaof
from ..keys import Keys
from .commit import MAX_GROUP, Committer, Logged, decided
from .group import Group, Judged, Outcome, Read
from .passages import Kind, resolve
from .recent import Recent
from .record import DECODE_RECORD, DECODE_SEEN, Transit, TransitRecord, encode_record, lapsed
from .spool import Spool, SpoolFull, read_frames
from .writer import GroupWriter

log = logging.getLogger(__name__)


class TransitLog:
    """Records transits durably (`log`), each as a new transit, a correction or a retry."""

    def __init__(
        self,
        *,
        redis_url: str | None,
        keys: Keys,
        spool_root: Path,
        spool_max_bytes: int,
        write_timeout_s: float,
        dedup_window_s: int,
        retention_s: float = 86400,
        correction_window_s: float = 600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis_url, self.keys = redis_url, keys
        self.stream = self.keys.transits
        self.spool_root, self.spool_max_bytes = spool_root, spool_max_bytes
        self.write_timeout_s, self.dedup_window_s = write_timeout_s, dedup_window_s
        self.clock, self.retention_s = clock, retention_s
        self.correction_window_s = correction_window_s
        # What is remembered of an event holds its plate: never longer than its record.
        self.seen_ttl_s = int(min(dedup_window_s, retention_s))
        self.spool: Spool | None = None
        self._redis: aredis.Redis | None = None
        self._committer: Committer | None = None
        self._writer: GroupWriter | None = None
        self._waitaof = False
        self.redis_ok = False  # Redis takes writes durably and the spool is empty
        self.full = False  # the last write was refused: spool full (or failing)
        self.last_error: str | None = None
        self.out_of_memory = False  # the last failure: Redis at its maxmemory (memory.py)
        self._group = Group()  # being gathered while the previous one is written
        self._wake = asyncio.Event()
        self._retry_redis = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._segment_lock = asyncio.Lock()  # replay and retention rewrite segments
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._recent = Recent(dedup_window_s)
        # counters for /metrics
        self.written_redis = 0
        self.written_spool = 0
        self.replayed = 0
        self.duplicates = 0  # retries answered with the standing verdict
        self.corrections = 0
        self.new_passages = 0  # an event id reused for another passage
        self.refused = 0
        self.groups = 0

    # -- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        self.spool = await asyncio.to_thread(Spool.claim, self.spool_root, self.spool_max_bytes)
        if self.redis_url is not None:
            # No retries inside redis-py: a failed write goes to the spool at once, and the
            # replay task owns reconnecting (the request path never waits on a reconnect loop).
            self._redis = aredis.Redis.from_url(
                self.redis_url,
                socket_timeout=self.write_timeout_s,
                socket_connect_timeout=self.write_timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            self._writer = GroupWriter(self._redis)
            self._committer = Committer(
                self._writer,
                self.keys,
                self.seen_ttl_s,
                self.correction_window_s,
                lambda timeout_s: int(timeout_s * 1000) if self._waitaof else None,
            )
            self._tasks.append(asyncio.create_task(self._replay_loop(), name="transit-replay"))
        self._tasks.append(asyncio.create_task(self._write_loop(), name="transit-writer"))
        self._tasks.append(
            asyncio.create_task(self._prune_loop(self.retention_s), name="transit-spool-retention")
        )

    async def stop(self) -> None:
        # Let queued records reach Redis or the spool: they may already be waited on.
        for _ in range(100):
            if not self._group and not self._write_lock.locked():
                break  # nothing gathered, nothing being written
            await asyncio.sleep(0.01)
        self._stopping = True
        self._retry_redis.set()
        self._wake.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._writer is not None:
            await self._writer.close()
        if self._redis is not None:
            await self._redis.aclose()
        if self.spool is not None:
            self.spool.release()

    # -- the request path ------------------------------------------------------------------

    async def log(
        self,
        transits: Sequence[Transit],
        gates: Sequence[Gate],
        verdicts: Sequence[Verdict],
        received: float,
    ) -> Sequence[Outcome]:
        """Record judged transits: each one's transit id, or a retry's standing read."""
        if not transits:
            return []
        group = self._group
        start = len(group)
        ids = group.add(transits, gates, verdicts, received)
        fut = group.wait(start)
        self._wake.set()
        outcomes = await fut
        return ids if outcomes is None else outcomes

    async def log_one(
        self, t: Read, ts: float, gate: Gate, ident: tuple[str, str], judged: Judged, now: float
    ) -> Outcome:
        """`log` of one native transit judged natively (`Group.add_one`); its outcome."""
        group = self._group
        fut = group.wait(group.add_one(t, ts, gate, ident, judged, now))
        self._wake.set()
        outcomes = await fut
        return ident[0] if outcomes is None else outcomes[0]

    async def _write_loop(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            # One more turn of the event loop: requests whose bodies arrived in the same
            # batch of socket events join this group instead of paying a round trip each.
            await asyncio.sleep(0)
            self._wake.clear()
            while self._group:
                group, self._group = self._group, Group()
                try:
                    async with self._write_lock:
                        outcomes = await self._write_group(group)
                except Exception as exc:  # SpoolFull, or the disk failing: refuse, never drop
                    for fut, _, _ in group.waiters:
                        if not fut.done():
                            fut.set_exception(exc)
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():  # see _replay_loop
                        raise asyncio.CancelledError from exc
                    self.refused += len(group)
                    self.full = True
                    continue
                self.groups += 1
                self.full = False
                for fut, start, end in group.waiters:
                    if not fut.done():
                        fut.set_result(None if outcomes is None else outcomes[start:end])

    async def _write_group(self, group: Group) -> list[Outcome] | None:
        """Write the group; None when every transit was written as built (the common case:
        Redis takes it, no event in it is remembered), else each transit's outcome."""
        now, digests = self.clock(), group.digests
        if self.redis_ok and group.distinct(MAX_GROUP) and not self._recent.knows_any(digests):
            assert self._committer is not None
            try:
                logged = await self._committer.commit_group(
                    group.ids, digests, group.frames, group.seens, self.write_timeout_s
                )
            except Exception as exc:
                self._redis_failed(exc)  # then decided one by one, to the spool
            else:
                if logged is None:
                    self.written_redis += len(group)
                    self._recent.remember_all(digests, group.seens, now)
                    return None
                self.written_redis += sum(lg.seen is not None for lg in logged)
                self._account(digests, logged, now)
                return _outcomes(logged)
        return _outcomes(await self._write([DECODE_RECORD(f) for f in group.frames], digests))

    async def _write(self, records: list[TransitRecord], digests: list[str]) -> list[Logged]:
        """Write the records, each decided against what is remembered of its event."""
        now = self.clock()
        window = self.correction_window_s
        results: list[Logged | None] = [None] * len(records)
        for i, rec in enumerate(records):  # retries this worker remembers: no round trip
            prior = self._recent.get(digests[i], now)
            if prior is not None:
                kind, write = resolve(prior, rec, window)
                if write is None:
                    results[i] = decided(kind, rec, prior)
        rest = [i for i, r in enumerate(results) if r is None]
        if rest and self.redis_ok:
            assert self._committer is not None
            try:
                logged = await self._committer.commit(
                    [records[i] for i in rest], self.write_timeout_s, [digests[i] for i in rest]
                )
            except Exception as exc:
                self._redis_failed(exc)
            else:
                for i, lg in zip(rest, logged, strict=True):
                    results[i] = lg
                self.written_redis += sum(lg.seen is not None for lg in logged)
                rest = []
        if rest:  # to the spool, decided against this worker's memory
            assert self.spool is not None
            frames = []
            spooled: dict[str, bytes] = {}  # `_account` remembers them once on disk
            for i in rest:
                mine = spooled.get(digests[i])
                prior = self._recent.get(digests[i], now) if mine is None else DECODE_SEEN(mine)
                kind, write = resolve(prior, records[i], window)
                results[i] = lg = decided(kind, records[i] if write is None else write, prior)
                if write is not None:
                    frames.append(encode_record(write))
                    assert lg.seen is not None
                    spooled[digests[i]] = lg.seen
            try:
                await asyncio.to_thread(self.spool.append, frames)
            except OSError as exc:  # (SpoolFull goes up as it is)
                log.error("transit spool write failed: %s", exc)
                raise SpoolFull(f"spool write failed: {exc.strerror}") from exc
            self.written_spool += len(frames)
            self._retry_redis.set()
        out = [r for r in results if r is not None]
        self._account(digests, out, now)
        return out

    def _account(self, digests: Sequence[str], logged: Sequence[Logged], now: float) -> None:
        """Count how the records were taken; remember what now stands for their events."""
        for digest, lg in zip(digests, logged, strict=True):
            if lg.kind is not Kind.NEW:
                self.duplicates += lg.kind is Kind.RETRY
                self.corrections += lg.kind is Kind.CORRECTION
                self.new_passages += lg.kind is Kind.NEW_PASSAGE
            if lg.seen is not None:
                self._recent.remember(digest, lg.seen, now)

    def distrust(self, reason: str) -> None:
        """Redis can no longer be trusted with transits (its memory policy would evict them,
        memory.py): write to the spool until the replay loop finds it fit again."""
        if self.redis_ok:
            self._redis_failed(NotDurable(reason))

    def _redis_failed(self, exc: BaseException) -> None:
        if self.redis_ok:
            log.warning(
                "transit log: Redis failed (%s); recording to the local spool", describe(exc)
            )
        self.redis_ok = False
        self.last_error = describe(exc)
        self.out_of_memory = isinstance(exc, OutOfMemoryError)
        self._retry_redis.set()

    # -- replay ----------------------------------------------------------------------------

    async def _replay_loop(self) -> None:
        """Connect, verify durability, replay the spool in order, then let writes go to
        Redis; on any failure back off (with jitter, so replicas do not retry in step)."""
        delay = 0.2
        while not self._stopping:  # redis-py may swallow a cancellation: check the flag too
            if self.redis_ok:
                await self._retry_redis.wait()
                self._retry_redis.clear()
                continue
            try:
                assert self._redis is not None
                async with asyncio.timeout(max(2.0, self.write_timeout_s * 4)):
                    self._waitaof = await needs_waitaof(self._redis, "acknowledged transits")
                await self._replay()
                delay = 0.2
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # A cancellation racing redis-py's timeout comes out as another exception
                # (Python 3.11's asyncio.timeout): honour it, or shutdown hangs.
                task = asyncio.current_task()
                if self._stopping or (task is not None and task.cancelling()):
                    raise asyncio.CancelledError from exc
                self.last_error = describe(exc)
                self.out_of_memory = isinstance(exc, OutOfMemoryError)
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 5.0)

    async def _replay(self) -> None:
        spool = self.spool
        assert spool is not None
        # Sealed segments first, without blocking new writes (they go to the active one) ...
        for path in spool.sealed_segments():
            await self._replay_segment(path)
        # ... then, holding writes back, whatever was written meanwhile; then switch.
        async with self._write_lock:
            spool.seal()
            for path in spool.segments():
                await self._replay_segment(path)
            spool.recount()
            self.redis_ok, self.last_error, self.full = True, None, False
            self.out_of_memory = False
        log.info("transit log: writing to Redis")

    async def _replay_segment(self, path: Path) -> None:
        assert self.spool is not None and self._committer is not None
        async with self._segment_lock:
            frames = await asyncio.to_thread(lambda: list(read_frames(path)))
            records = [DECODE_RECORD(f) for f in frames]
            # Each spooled record decided again against Redis: a correction made while Redis
            # was away lands as one, whatever another replica wrote meanwhile.
            await self._committer.commit(records, timeout_s=10.0 + len(records) / 1000)
            self.replayed += len(records)
            await asyncio.to_thread(self.spool.remove, path)
        if records:
            log.info("transit log: replayed %d spooled transits into Redis", len(records))

    async def prune_spool(self, retention_s: float) -> int:
        """Drop spooled records past `retention_s` (`lapsed`; Redis away longer than that):
        they must not outlive their purpose. The number dropped."""
        spool = self.spool
        if spool is None or spool.is_empty():
            return 0
        cutoff = self.clock() - retention_s
        async with self._write_lock, self._segment_lock:
            return await asyncio.to_thread(spool.prune, lambda f: not lapsed(f, cutoff))

    async def _prune_loop(self, retention_s: float, every_s: float = 60.0) -> None:
        while not self._stopping:
            await asyncio.sleep(every_s)
            try:
                await self.prune_spool(retention_s)
            except OSError as exc:
                log.error("transit spool retention failed: %s", exc)

    def status(self) -> dict[str, object]:
        spool = self.spool
        return {
            "target": "redis" if self.redis_ok else "spool",
            "last_error": self.last_error,
            "spool_bytes": spool.bytes_used if spool else 0,
            "spool_max_bytes": self.spool_max_bytes,
            "spool_dir": str(spool.directory) if spool else None,
        }


def _outcomes(logged: Sequence[Logged]) -> list[Outcome]:
    return [lg.id if lg.retry is None else lg.retry for lg in logged]
