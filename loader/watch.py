"""`varco watch`: tail the permit database, stream its changes, publish snapshots.

Each round (every `poll_s`, or at once when the admin API publishes a wake-up):

1. Stream every permit row whose revision is newer than the last one streamed (below), then run
   the feeds that are due (what a sync changed goes out in step 3 of the same round).
2. Publish a fresh snapshot when none is in Redis, when a replica asked for one (it missed
   changes), when the schedule says so, or when more changes than `max_overlay` were streamed
   since the last one (replicas hold those in memory, outside the compact index).
3. Stream again: every permit row whose revision is newer than the last one streamed, oldest
   first, each entry naming the one before it (enforcement/core/changes.py). Revisions follow
   commit order in both databases (store.py), so reading `revision > last` never skips a
   row committed late.
4. Record the heartbeat: the instant at which the database was read and wholly published.

One loader at a time holds the lease (lease.py); a second one stands by, hot (its database
open), and takes over as the lease expires: every write it makes is fenced by the lease's
token, so a loader that lost the lease cannot write. A crash at any point leaves no
half-visible state: snapshot chunks carry an expiry until the pointer switches to them, and
stream entries are written in revision order with ids that refuse a duplicate.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import redis

from enforcement.config.settings import Settings
from enforcement.core.changes import (
    STREAM_FIELD,
    PermitChange,
    encode_change,
    revision_of,
    stream_id,
)
from enforcement.core.rules import Rules
from enforcement.keys import Keys
from enforcement.replica.distribution import publish_snapshot
from enforcement.replica.sources import ENCODER as SOURCE_ENCODER

from .database import open_db
from .feeds import FeedRunner
from .lease import LEASE_MS, Lease, LeaseLost
from .rebuild import DEFAULT_MAX_SHRINK, ShrinkRefused, rebuild
from .store import PermitRow, PermitStore

log = logging.getLogger(__name__)

BATCH: Final = 1000


@dataclass(frozen=True, slots=True)
class WatchOptions:
    poll_s: float = 0.2
    snapshot_interval_s: float = 3600.0
    max_overlay: int = 20_000
    history_days: int = 30
    max_shrink: float = DEFAULT_MAX_SHRINK
    lease_ms: int = LEASE_MS


def watch_options(settings: Settings) -> WatchOptions:
    return WatchOptions(
        poll_s=settings.loader.poll_s,
        snapshot_interval_s=settings.loader.snapshot_interval_s,
        max_overlay=settings.loader.max_overlay,
        history_days=settings.storage.history_days,
        lease_ms=settings.loader.lease_ms,
    )


def change_of(row: PermitRow, revision: int, prev: int) -> PermitChange:
    return PermitChange(
        revision,
        prev,
        row.permit_id,
        row.type,
        row.valid_from,
        row.valid_to,
        row.zones,
        row.source,
        row.plates,
        row.periods,
    )


class LoaderWatch:
    def __init__(
        self,
        db: PermitStore,
        rules: Rules,
        snapshot_dir: Path,
        r: redis.Redis,
        options: WatchOptions,
        keys: Keys | None = None,
        feeds: FeedRunner | None = None,
        reopen: Callable[[], PermitStore] | None = None,
    ) -> None:
        self.db, self.rules, self.snapshot_dir, self.r = db, rules, snapshot_dir, r
        self.reopen = reopen  # a new database connection after an error (PostgreSQL restart)
        self.waiting_for_lease = False
        self.options = options
        self.keys = keys or Keys()
        self.feeds = feeds
        self.stop_event = threading.Event()
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.lease = Lease(r, self.keys, self.identity, options.lease_ms)
        self.last_streamed: int | None = None
        self.snapshot_at = 0.0
        self.streamed_since_snapshot = 0
        self.refused_until = 0.0

    # -- the lease ---------------------------------------------------------------------------

    def _take_lease(self) -> bool:
        """True while this loader is the active one; a standby asks as the lease expires."""
        if self.lease.token is not None:
            return True
        before = self.lease.epoch
        if not self.lease.acquire():
            if not self.waiting_for_lease:
                log.info("another loader holds the lease; standing by")
                self.waiting_for_lease = True
            return False
        if self.lease.epoch != before:  # a new term (not our own lease, renewed late)
            log.info("lease taken (epoch %d): this loader is active", self.lease.epoch)
            # Another loader may have streamed and snapshotted since we last did: start over
            # from what Redis has, as a loader just started would.
            self.last_streamed, self.snapshot_at, self.streamed_since_snapshot = None, 0.0, 0
        self.waiting_for_lease = False
        return True

    def _wait_s(self) -> float:
        """Until the next round: the poll tick, or for a standby until the lease expires."""
        if self.lease.token is not None:
            return self.options.poll_s
        return min(self.options.poll_s, self.lease.standby_wait_s + 0.002)

    # -- one round ---------------------------------------------------------------------------

    def step(self) -> int:
        """One round; returns how many changes were streamed."""
        if not self._take_lease():
            return 0
        read_at = time.time()
        if self.last_streamed is None:
            self.last_streamed = self._last_in_stream()
        # Stream first, then snapshot, then stream what committed meanwhile: a snapshot never
        # jumps the stream ahead, so a replica never sees an entry whose predecessor it lacks
        # (it would turn stale, ask for a snapshot, and the fleet would go 503 together).
        # Feeds after the first stream: a loader just taking over runs every feed at once,
        # and the permits issued meanwhile must not wait for those syncs.
        n = self.stream_changes() if self.last_streamed is not None else 0
        if self.feeds is not None:
            for status in self.feeds.run_due(self.db):
                self.lease.write(
                    "hset", self.keys.sources, status.name, SOURCE_ENCODER.encode(status)
                )
        if self._snapshot_due():
            self.publish_snapshot()
        if self.last_streamed is not None:
            n += self.stream_changes()
            self.lease.write("set", self.keys.heartbeat, repr(read_at))
        return n

    def _last_in_stream(self) -> int | None:
        last: Any = self.r.xrevrange(self.keys.changes, count=1)
        if last:
            return revision_of(last[0][0])
        # Emptied by trimming (no change between the two snapshots kept): the stream still
        # knows its last id, so a loader taking over streams on at once instead of rebuilding.
        with contextlib.suppress(redis.ResponseError):  # no stream at all
            info: Any = self.r.xinfo_stream(self.keys.changes)
            last_id = info.get("last-generated-id") or info.get(b"last-generated-id")
            if last_id is not None and revision_of(last_id) > 0:
                return revision_of(last_id)
        return None

    def _snapshot_due(self) -> bool:
        if time.time() < self.refused_until:
            return False  # a refused rebuild waits for its interval (or an operator)
        if self.last_streamed is None or self.r.get(self.keys.current) is None:
            return True  # nothing to stream from: replicas need a base first
        if self.r.exists(self.keys.wanted):
            return True
        if self.snapshot_at == 0.0:  # this loader's first round: publish only if needed
            self.snapshot_at = time.time()
        return (
            time.time() - self.snapshot_at >= self.options.snapshot_interval_s
            or self.streamed_since_snapshot >= self.options.max_overlay
        )

    def publish_snapshot(self) -> None:
        try:
            report = rebuild(
                self.db,
                self.rules,
                self.snapshot_dir,
                self.options.history_days,
                max_shrink=self.options.max_shrink,
            )
        except ShrinkRefused as exc:
            log.error(
                "snapshot not published, retrying in %.0f s (changes still stream): %s",
                self.options.snapshot_interval_s,
                exc,
            )
            self.refused_until = time.time() + self.options.snapshot_interval_s
            return
        try:
            name = publish_snapshot(self.r, self.keys, report.path, token=self.lease.fence_token())
        except LeaseLost:  # another loader took over meanwhile: its snapshots are the ones
            log.warning("lease lost during the rebuild; this loader's snapshot is not published")
            raise
        log.info(
            "snapshot published to Redis: %s (revision %d, %d permits)",
            name,
            report.revision,
            report.permits,
        )
        self.snapshot_at = time.time()
        self.streamed_since_snapshot = 0
        if self.last_streamed is None:
            # An empty (new or lost) stream starts after this snapshot: every replica takes
            # the snapshot first, and one behind it sees the gap and resynchronises.
            self.last_streamed = report.revision

    def stream_changes(self) -> int:
        assert self.last_streamed is not None
        total = 0
        while True:
            rows = self.db.changes_since(self.last_streamed, BATCH)
            if not rows:
                return total
            prev = self.last_streamed
            entries = []
            for revision, row in rows:
                entries.append((stream_id(revision), encode_change(change_of(row, revision, prev))))
                prev = revision
            # Fenced: a loader whose lease was taken (paused, partitioned) writes nothing.
            self.lease.append(self.keys.changes, STREAM_FIELD, entries)
            self.last_streamed = prev
            total += len(rows)
            self.streamed_since_snapshot += len(rows)

    # -- the daemon --------------------------------------------------------------------------

    def run(self) -> None:
        """Until SIGTERM/SIGINT (or `stop_event`): rounds, woken early by the admin API.
        SIGHUP (logrotate, a closed terminal) does not end it: the log goes to standard error,
        there is nothing to reopen; it says so and goes on."""
        hangups = 0
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop_event.set())

            def hangup(*_: object) -> None:  # only a count here: the loop logs
                nonlocal hangups
                hangups += 1

            signal.signal(signal.SIGHUP, hangup)
        seen_hangups = 0
        pubsub = None
        backoff = 0.2
        while not self.stop_event.is_set():
            if hangups != seen_hangups:
                seen_hangups = hangups
                log.info("SIGHUP: still running; logs go to standard error, no file to reopen")
            try:
                if pubsub is None:
                    pubsub = self.r.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call,unused-ignore]
                    pubsub.subscribe(self.keys.wake)
                n = self.step()
                if n:
                    log.debug("streamed %d permit changes", n)
                backoff = 0.2
                pubsub.get_message(timeout=self._wait_s())  # a wake-up, or the poll tick
            except LeaseLost:  # a write refused: the lease expired unrenewed, or another has it
                log.warning("a write was refused, the lease is no longer this loader's")
                self.lease.drop()
                self.waiting_for_lease = True
            except (redis.RedisError, OSError) as exc:
                log.warning(
                    "Redis unreachable (%s); retrying in %.1f s", type(exc).__name__, backoff
                )
                pubsub = None
                self.last_streamed = None  # re-read from the stream: Redis may have lost data
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            except Exception:  # the database (restart, failover), a rebuild: never die of it
                log.exception("loader round failed; retrying in %.1f s", backoff)
                self._reconnect_db()
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        self.lease.release()
        log.info("loader stopped")

    def _reconnect_db(self) -> None:
        if self.reopen is None:
            return
        with contextlib.suppress(Exception):
            self.db.close()
        try:
            self.db = self.reopen()
        except Exception as exc:  # still down: the next round tries again
            log.warning("permit database still unreachable: %s", exc)


def feeds_of(settings: Settings, rules: Rules) -> FeedRunner | None:
    return FeedRunner(settings, rules) if settings.sources else None


def redis_client(url: str) -> redis.Redis:
    # Explicit timeouts: a loader never hangs on a dead server, it logs and retries.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def run_loader(
    settings: Settings,
    rules: Rules,
    redis_url: str,
    options: WatchOptions | None = None,
    started: Callable[[LoaderWatch], None] | None = None,
) -> None:
    """The daemon: its own database connection and Redis client, until stopped; `started`
    is given the daemon before its first round (to stop it from another thread)."""
    r = redis_client(redis_url)
    try:
        with open_db(settings) as db:  # SQLite connections belong to the thread that opens them
            watch = LoaderWatch(
                db,
                rules,
                settings.storage.snapshot_dir,
                r,
                options or watch_options(settings),
                Keys(settings.redis.prefix),
                feeds_of(settings, rules),
                lambda: open_db(settings),
            )
            if started is not None:
                started(watch)
            watch.run()
            if watch.db is not db:
                watch.db.close()
    finally:
        r.close()


class LoaderThread:
    """The loader daemon in a thread of this process (`varco demo`, tests)."""

    def __init__(
        self, settings: Settings, rules: Rules, redis_url: str, options: WatchOptions | None = None
    ) -> None:
        self.settings, self.rules, self.redis_url = settings, rules, redis_url
        self.options = options or watch_options(settings)
        self.watch: LoaderWatch | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="loader", daemon=True)

    def _run(self) -> None:
        def started(watch: LoaderWatch) -> None:
            self.watch = watch
            self.ready.set()

        try:
            run_loader(self.settings, self.rules, self.redis_url, self.options, started)
        finally:
            self.ready.set()  # a failed start must not leave start() waiting

    def start(self) -> LoaderThread:
        self.thread.start()
        if not self.ready.wait(30) or self.watch is None:
            raise RuntimeError("the loader thread did not start (see the log)")
        return self

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop_event.set()
        self.thread.join(15)
