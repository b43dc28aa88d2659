"""A replica following Redis: current snapshot, then the permit-change stream from its revision.

One asyncio task per worker process:

1. At start-up the newest verified local snapshot is served at once (so a replica starts with
   Redis down), then the follower swaps in Redis's current snapshot if it is newer.
2. It reads the change stream from the live revision (`XREAD BLOCK`, so a change issued
   anywhere is applied here within one round trip) and applies each entry to the overlay.
3. Whenever Redis names a newer snapshot, it is fetched (once per host, shared by the
   workers), verified, bound, and swapped in with the overlay entries it lacks carried over.
4. Each round also notes whether a loader holds its lease (loader_presence.py): without one,
   nothing streams permit changes, and `/readyz` says so within seconds.
5. On a gap (core/changes.py) the overlay turns stale: verdicts that would be `pending` become
   `review`, `/readyz` says so, and the follower asks the loader for a snapshot
   (`snapshot:wanted`) and resynchronises from it.
6. Redis unreachable: keep serving from memory, retry with back-off; the index's freshness
   (the loader heartbeat last seen) ages until `index_max_age` turns verdicts into `review`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final

import msgspec
import redis.asyncio as aredis
from aiohttp import web
from redis.exceptions import RedisError

from ..core.changes import STREAM_FIELD, decode_change, stream_id
from ..core.live import IndexHolder, bind
from ..core.rules import Rules
from ..core.snapshot import SUFFIX, SnapshotError, open_snapshot
from ..keys import Keys
from .distribution import SnapshotUnavailable, current_snapshot, fetch_snapshot
from .hangup import on_hangup
from .loader_presence import LoaderPresence, lease_held
from .sources import DECODER as SOURCE_DECODER
from .sources import SourceStatus
from .watcher import load_initial

log = logging.getLogger(__name__)

READ_COUNT: Final = 1000
BLOCK_MS: Final = 1000
SOURCES_EVERY_S: Final = 5.0  # feed statuses change hourly at most: no need to read them often
KEEP_LOCAL: Final = 3


class Follower:
    def __init__(
        self,
        holder: IndexHolder,
        rules: Rules,
        snapshot_dir: Path,
        redis_url: str,
        keys: Keys | None = None,
    ) -> None:
        self.holder, self.rules, self.snapshot_dir = holder, rules, snapshot_dir
        self.keys = keys or Keys()
        # Explicit timeouts: the read blocks BLOCK_MS server-side, so allow that and more.
        self.redis = aredis.Redis.from_url(
            redis_url, socket_timeout=BLOCK_MS / 1000 + 4, socket_connect_timeout=2
        )
        self.connected = False
        self.stopping = False
        self.last_error: str | None = None
        self.changes_applied = 0
        self.resyncs = 0
        self.sources: dict[str, SourceStatus] = {}  # the loader's feeds, as last read
        self.loader = LoaderPresence()  # is a loader streaming changes? (/readyz)
        self._sources_read_at = 0.0

    async def close(self) -> None:
        await self.redis.aclose()

    def stop(self) -> None:
        self.stopping = True

    def hangup(self) -> None:
        """SIGHUP (hangup.py): the feeds' status read on the next round, not in 5 s (every
        round already asks Redis for a newer snapshot)."""
        self._sources_read_at = 0.0

    async def run(self) -> None:
        backoff = 0.2
        while not self.stopping:
            try:
                await self.step()
                if not self.connected:
                    log.info("following Redis: snapshot and permit changes")
                self.connected, self.last_error, backoff = True, None, 0.2
            except (RedisError, OSError) as exc:
                # A cancellation racing redis-py's read timeout comes out as a TimeoutError
                # (asyncio.timeout swallows it; Python 3.11): honour it, or shutdown hangs.
                task = asyncio.current_task()
                if self.stopping or (task is not None and task.cancelling()):
                    raise asyncio.CancelledError from exc
                if self.connected or self.last_error is None:
                    log.warning(
                        "Redis unreachable (%s); serving from memory, retrying", type(exc).__name__
                    )
                self.connected, self.last_error = False, f"redis: {type(exc).__name__}"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception as exc:  # a bug or a disk error: report it, never stop following
                log.exception("following Redis failed; retrying")
                self.last_error = f"follower: {type(exc).__name__}"
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def step(self) -> None:
        """One round: adopt a newer snapshot, then apply what the stream has (or wait ≤ 1 s)."""
        self.loader.observe(await lease_held(self.redis, self.keys))
        await self.sync_snapshot()
        live = self.holder.current
        if live is None:  # nothing to apply changes to yet
            await asyncio.sleep(BLOCK_MS / 1000)
            return
        if live.overlay.stale is not None:
            await self.redis.set(self.keys.wanted, b"1")
            await asyncio.sleep(0.25)
            return
        if time.monotonic() - self._sources_read_at > SOURCES_EVERY_S:
            await self.read_sources()
        heartbeat = await self.redis.get(self.keys.heartbeat)  # read before the stream: see
        # distribution.py; every change published before it is in what XREAD returns now
        reply: Any = await self.redis.xread(
            {self.keys.changes: stream_id(live.revision)}, count=READ_COUNT, block=BLOCK_MS
        )
        entries = reply[0][1] if reply else []
        overlay = live.overlay
        for _entry_id, fields in entries:
            try:
                change = decode_change(fields[STREAM_FIELD])
            except (KeyError, msgspec.DecodeError):
                overlay.mark_stale(
                    "a malformed entry in the permit-change stream", overlay.revision + 1
                )
            else:
                if overlay.apply(change):
                    self.changes_applied += 1
                    continue
            # Stale from here on: ask the loader for a snapshot at once (and every round after).
            await self.redis.set(self.keys.wanted, b"1")
            return
        if len(entries) < READ_COUNT and heartbeat is not None:
            overlay.fresh_at = float(heartbeat)

    async def read_sources(self) -> None:
        raw: Any = await self.redis.hgetall(self.keys.sources)
        sources = {}
        for name, value in raw.items():
            try:
                sources[name.decode()] = SOURCE_DECODER.decode(value)
            except msgspec.DecodeError:
                log.error("unreadable feed status in Redis for %r: ignored", name)
        self.sources, self._sources_read_at = sources, time.monotonic()

    async def sync_snapshot(self) -> None:
        current = await current_snapshot(self.redis, self.keys)
        live = self.holder.current
        if current is None:
            return
        name, revision = current
        if live is not None and revision <= live.snapshot_revision:
            return
        # Adopted even when the overlay already has every change it holds: the swap folds those
        # changes into the compact index, which is what keeps the overlay small.
        try:
            path = await fetch_snapshot(self.redis, self.keys, name, self.snapshot_dir)
            index = await asyncio.to_thread(open_snapshot, path)
        except (SnapshotUnavailable, SnapshotError) as exc:
            self.holder.refuse(exc)
            log.error("snapshot from Redis refused, keeping the current index: %s", exc)
            if isinstance(exc, SnapshotError):
                path.unlink(missing_ok=True)  # a bad local copy: fetch again next round
            return
        new = await asyncio.to_thread(bind, index, self.rules, path)
        old = self.holder.current  # may have changed while we awaited
        if old is not None:
            new.overlay.carry_over(old.overlay)
            if old.overlay.stale is not None and new.overlay.stale is None:
                self.resyncs += 1
        self.holder.activate(new)
        log.info(
            "index activated from Redis: snapshot revision %d, %d permits, overlay %d",
            revision,
            index.permit_count,
            len(new.overlay),
        )
        _prune_local(self.snapshot_dir, keep=path)


def _prune_local(directory: Path, keep: Path) -> None:
    """Keep a few downloaded snapshots (the fallback when Redis is down at start-up)."""
    files = sorted(directory.glob("index-r*" + SUFFIX), key=lambda p: p.stat().st_mtime)
    for old in files[:-KEEP_LOCAL]:
        if old != keep:
            with contextlib.suppress(OSError):
                old.unlink()


def redis_follower(
    rules: Rules,
    holder: IndexHolder,
    snapshot_dir: Path,
    redis_url: str,
    keys: Keys | None = None,
    on_start: Callable[[Follower], None] | None = None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx resource: serve the local snapshot, then follow Redis until shutdown."""

    async def resource(app: web.Application) -> AsyncIterator[None]:
        t0 = time.perf_counter()
        await asyncio.to_thread(load_initial, holder, rules, snapshot_dir)
        follower = Follower(holder, rules, snapshot_dir, redis_url, keys)
        if on_start is not None:
            on_start(follower)
        task = asyncio.create_task(follower.run(), name="redis-follower")
        log.debug("local snapshot loaded in %.2f s", time.perf_counter() - t0)
        with on_hangup(follower.hangup, "Redis's snapshot and feed status read now"):
            yield
        follower.stop()  # ends the loop even if the cancellation below gets swallowed
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await follower.close()

    return resource
