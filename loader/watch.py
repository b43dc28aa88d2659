"""`varco watch`: tail the permit database, stream its changes, publish snapshots.

Each round (every `poll_s`, or at once when the admin API publishes a wake-up):

1. Publish a fresh snapshot when none is in Redis, when a replica asked for one (it missed
   changes), when the schedule says so, or when more changes than `max_overlay` were streamed
   since the last one (replicas hold those in memory, outside the compact index).
2. Stream every permit row whose revision is newer than the last one streamed, oldest first,
   each entry naming the one before it (changes.py). Revisions follow commit order in both
   databases (db.py), so reading `revision > last` never skips a row committed late.
3. Record the heartbeat: the instant at which the database was read and wholly published.

One loader at a time holds a lease in Redis; a second one waits. A crash at any point leaves
no half-visible state: snapshot chunks carry an expiry until the pointer switches to them,
and stream entries are written in revision order with ids that refuse a duplicate.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import redis

from enforcement.changes import STREAM_FIELD, PermitChange, encode_change, revision_of, stream_id
from enforcement.config import Settings
from enforcement.distribution import Layout, publish_snapshot
from enforcement.rules import Rules
from enforcement.sources import ENCODER as SOURCE_ENCODER

from .db import PermitRow, PermitStore, open_db
from .feeds import FeedRunner
from .rebuild import DEFAULT_MAX_SHRINK, ShrinkRefused, rebuild

log = logging.getLogger(__name__)

LEASE_MS: Final = 10_000
BATCH: Final = 1000


@dataclass(frozen=True, slots=True)
class WatchOptions:
    poll_s: float = 0.2
    snapshot_interval_s: float = 3600.0
    max_overlay: int = 20_000
    history_days: int = 30
    max_shrink: float = DEFAULT_MAX_SHRINK


def watch_options(settings: Settings) -> WatchOptions:
    return WatchOptions(
        poll_s=settings.loader_poll_s,
        snapshot_interval_s=settings.snapshot_interval_s,
        max_overlay=settings.max_overlay,
        history_days=settings.history_days,
    )


def change_of(row: PermitRow, revision: int, prev: int) -> PermitChange:
    return PermitChange(revision, prev, row.permit_id, row.type, row.valid_from, row.valid_to,
                        row.zones, row.source, row.plates)  # fmt: skip


class LoaderWatch:
    def __init__(self, db: PermitStore, rules: Rules, snapshot_dir: Path, r: redis.Redis,
                 options: WatchOptions, layout: Layout | None = None,
                 feeds: FeedRunner | None = None) -> None:  # fmt: skip
        self.db, self.rules, self.snapshot_dir, self.r = db, rules, snapshot_dir, r
        self.options = options
        self.layout = layout or Layout()
        self.feeds = feeds
        self.stop_event = threading.Event()
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.last_streamed: int | None = None
        self.snapshot_revision = -1
        self.snapshot_at = 0.0
        self.streamed_since_snapshot = 0

    # -- the lease ---------------------------------------------------------------------------

    def _hold_lease(self) -> bool:
        key = f"{self.layout.prefix}:loader:lease"
        me = self.identity.encode()
        if self.r.set(key, me, nx=True, px=LEASE_MS):
            return True
        if self.r.get(key) == me:
            self.r.pexpire(key, LEASE_MS)
            return True
        return False

    # -- one round ---------------------------------------------------------------------------

    def step(self) -> int:
        """One round; returns how many changes were streamed."""
        if not self._hold_lease():
            log.info("another loader holds the lease; waiting")
            return 0
        read_at = time.time()
        if self.last_streamed is None:
            self.last_streamed = self._last_in_stream()
        if self.feeds is not None:  # before streaming: what a sync changed goes out now
            for status in self.feeds.run_due(self.db):
                self.r.hset(self.layout.sources, status.name, SOURCE_ENCODER.encode(status))
        if self._snapshot_due():
            self.publish_snapshot()
        n = self.stream_changes()
        self.r.set(self.layout.heartbeat, repr(read_at))
        return n

    def _last_in_stream(self) -> int | None:
        last: Any = self.r.xrevrange(self.layout.changes, count=1)
        return revision_of(last[0][0]) if last else None

    def _snapshot_due(self) -> bool:
        if self.last_streamed is None or self.r.get(self.layout.current) is None:
            return True  # nothing to stream from: replicas need a base first
        if self.r.exists(self.layout.wanted):
            return True
        if self.snapshot_at == 0.0:  # this loader's first round: publish only if needed
            self.snapshot_at = time.time()
        return (time.time() - self.snapshot_at >= self.options.snapshot_interval_s
                or self.streamed_since_snapshot >= self.options.max_overlay)  # fmt: skip

    def publish_snapshot(self) -> None:
        try:
            report = rebuild(self.db, self.rules, self.snapshot_dir, self.options.history_days,
                             max_shrink=self.options.max_shrink)  # fmt: skip
        except ShrinkRefused as exc:
            log.error("snapshot not published: %s", exc)
            self.snapshot_at = time.time()  # retry on the next schedule, not every round
            return
        name = publish_snapshot(self.r, self.layout, report.path)
        log.info("snapshot published to Redis: %s (revision %d, %d permits)", name,
                 report.revision, report.permits)  # fmt: skip
        self.snapshot_revision = report.revision
        self.snapshot_at = time.time()
        self.streamed_since_snapshot = 0
        if self.last_streamed is None or self.last_streamed < report.revision:
            # The stream restarts after the snapshot: a replica behind it sees the gap.
            self.last_streamed = report.revision

    def stream_changes(self) -> int:
        assert self.last_streamed is not None
        total = 0
        while True:
            rows = self.db.changes_since(self.last_streamed, BATCH)
            if not rows:
                return total
            pipe = self.r.pipeline(transaction=False)
            prev = self.last_streamed
            for revision, row in rows:
                fields: dict[Any, Any] = {STREAM_FIELD: encode_change(change_of(row, revision,
                                                                                prev))}  # fmt: skip
                pipe.xadd(self.layout.changes, fields, id=stream_id(revision))
                prev = revision
            pipe.execute()
            self.last_streamed = prev
            total += len(rows)
            self.streamed_since_snapshot += len(rows)

    # -- the daemon --------------------------------------------------------------------------

    def run(self) -> None:
        """Until SIGTERM/SIGINT (or `stop_event`): rounds, woken early by the admin API."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            if threading.current_thread() is threading.main_thread():
                signal.signal(sig, lambda *_: self.stop_event.set())
        pubsub = None
        backoff = 0.2
        while not self.stop_event.is_set():
            try:
                if pubsub is None:
                    pubsub = self.r.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                    pubsub.subscribe(self.layout.wake)
                n = self.step()
                if n:
                    log.debug("streamed %d permit changes", n)
                backoff = 0.2
                pubsub.get_message(timeout=self.options.poll_s)  # a wake-up, or the poll tick
            except (redis.RedisError, OSError) as exc:
                log.warning("Redis unreachable (%s); retrying in %.1f s", type(exc).__name__,
                            backoff)  # fmt: skip
                pubsub = None
                self.last_streamed = None  # re-read from the stream: Redis may have lost data
                self.stop_event.wait(backoff)
                backoff = min(backoff * 2, 5.0)
        log.info("loader stopped")


def feeds_of(settings: Settings, rules: Rules) -> FeedRunner | None:
    return FeedRunner(settings, rules) if settings.sources else None


def redis_client(url: str) -> redis.Redis:
    # Explicit timeouts: a loader never hangs on a dead server, it logs and retries.
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)


def run_loader(settings: Settings, rules: Rules, redis_url: str,
               options: WatchOptions | None = None) -> None:  # fmt: skip
    """The daemon: its own database connection and Redis client, until stopped."""
    r = redis_client(redis_url)
    try:
        with open_db(settings) as db:
            LoaderWatch(db, rules, settings.snapshot_dir, r, options or watch_options(settings),
                        Layout(settings.redis_prefix), feeds_of(settings, rules)).run()  # fmt: skip
    finally:
        r.close()


class LoaderThread:
    """The loader daemon in a thread of this process (`varco demo`, tests)."""

    def __init__(self, settings: Settings, rules: Rules, redis_url: str,
                 options: WatchOptions | None = None) -> None:  # fmt: skip
        self.settings, self.rules, self.redis_url = settings, rules, redis_url
        self.options = options or watch_options(settings)
        self.watch: LoaderWatch | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="loader", daemon=True)

    def _run(self) -> None:
        r = redis_client(self.redis_url)
        try:
            with open_db(self.settings) as db:  # SQLite connections belong to their thread
                layout = Layout(self.settings.redis_prefix)
                self.watch = LoaderWatch(db, self.rules, self.settings.snapshot_dir, r,
                                         self.options, layout,
                                         feeds_of(self.settings, self.rules))  # fmt: skip
                self.ready.set()
                self.watch.run()
        finally:
            self.ready.set()
            r.close()

    def start(self) -> LoaderThread:
        self.thread.start()
        if not self.ready.wait(30) or self.watch is None:
            raise RuntimeError("the loader thread did not start (see the log)")
        return self

    def stop(self) -> None:
        if self.watch is not None:
            self.watch.stop_event.set()
        self.thread.join(15)
