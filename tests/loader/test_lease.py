"""The loader lease (loader/lease.py) on a real Redis and a real permit database: fencing, a
rebuild longer than the lease, a clean stop handing over at once."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from loader.database import open_db
from loader.lease import Lease, LeaseLost
from loader.watch import LoaderWatch, WatchOptions
from varco.demo import demo_permits

from ..support.api import PERMITS
from ..support.common import permit


def loader(
    settings: Settings, rules: Rules, r: redis.Redis, lease_ms: int, name: str
) -> LoaderWatch:
    options = WatchOptions(poll_s=0.05, history_days=100_000, max_shrink=1.0, lease_ms=lease_ms)
    watch = LoaderWatch(open_db(settings), rules, settings.storage.snapshot_dir, r, options)
    watch.identity = name
    watch.lease.name = name
    return watch


@pytest.fixture
def r(redis_server: EmbeddedRedis) -> redis.Redis:
    return redis.Redis.from_url(redis_server.url)


def test_a_loader_whose_lease_was_taken_cannot_write(
    demo: tuple[Settings, Rules], r: redis.Redis
) -> None:
    """A loader paused past its lease (the lease expired in Redis, another loader took it)
    wakes up still believing it is active: Redis refuses its stream entries, heartbeat and
    snapshot switch. Its local deadline is a minute away here, so only the fence stops it."""
    settings, rules = demo
    keys = Keys()
    with open_db(settings) as db:
        db.upsert(PERMITS)
    old = loader(settings, rules, r, lease_ms=60_000, name="old")
    new = loader(settings, rules, r, lease_ms=300, name="new")
    try:
        old.step()  # active: the first snapshot, the heartbeat
        assert old.lease.token is not None
        first_epoch = old.lease.epoch

        r.delete(keys.lease)  # what expiry does while `old` is paused
        assert new.step() == 0 and new.lease.epoch == first_epoch + 1  # `new` is active
        current, heartbeat = r.get(keys.current), r.get(keys.heartbeat)
        streamed = r.xlen(keys.changes)
        time.sleep(0.01)  # a heartbeat written after this differs
        with open_db(settings) as db:
            db.upsert([permit("LATE-1", "LA123TE", "1", "2020-01-01T00:00:00+01:00")])
            revision = db.revision
        assert old.lease.token is not None  # `old` still thinks it holds the lease

        with pytest.raises(LeaseLost):  # refused by the switch's check in Redis
            old.publish_snapshot()
        assert r.get(keys.current) == current
        assert old.lease.token is not None  # (so the stream's check is Redis's too)
        with pytest.raises(LeaseLost):
            old.stream_changes()
        assert r.xlen(keys.changes) == streamed  # nothing of `old` reached the stream
        assert r.get(keys.heartbeat) == heartbeat
        assert old.lease.token is None  # refused once: it knows now
        assert old.step() == 0  # and stands by

        assert new.step() == 1  # the active loader streams the change
        last = r.xrevrange(keys.changes, count=1)
        assert last[0][0] == f"{revision}-1".encode()
        assert r.get(keys.heartbeat) != heartbeat
    finally:
        for w in (old, new):
            w.lease.release()
            w.db.close()


def test_a_rebuild_longer_than_the_lease_keeps_it(
    demo: tuple[Settings, Rules], r: redis.Redis
) -> None:
    """The lease is renewed from a thread of its own: a rebuild many leases long (CPU-bound,
    in this process) does not hand it to the standby asking every few milliseconds."""
    settings, rules = demo
    keys = Keys()
    with open_db(settings) as db:
        db.upsert(list(demo_permits(rules, 200_000)))
    active = loader(settings, rules, r, lease_ms=200, name="active")
    standby = Lease(r, keys, "standby", lease_ms=200)
    took_over = threading.Event()
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            if standby.acquire():
                took_over.set()
                return
            time.sleep(0.005)

    try:
        assert active.lease.acquire()
        epoch = active.lease.epoch
        asker = threading.Thread(target=ask, daemon=True)
        asker.start()
        t0 = time.monotonic()
        active.step()  # no snapshot in Redis yet: the first round rebuilds and publishes one
        took = time.monotonic() - t0
        stop.set()
        asker.join(5)
        assert took > 0.6, f"the rebuild took {took:.2f} s: not longer than the lease here"
        assert not took_over.is_set(), (active.lease.max_renew_gap_s, active.lease.renew_errors)
        assert active.lease.token is not None and active.lease.epoch == epoch
        assert r.get(keys.lease) == active.lease.token
        assert r.get(keys.current) is not None  # the rebuild's snapshot was switched to
        assert active.lease.max_renew_gap_s < 0.2  # renewed within every lease
    finally:
        stop.set()
        active.lease.release()
        standby.release()
        active.db.close()


def test_writes_are_fenced_in_redis(r: redis.Redis) -> None:
    """The check is Redis's, in the same call as the write: a token still valid by the
    writer's own clock (a minute-long lease) is refused once another loader holds the lease."""
    keys = Keys()
    old, new = Lease(r, keys, "old", lease_ms=60_000), Lease(r, keys, "new", lease_ms=60_000)
    try:
        assert old.acquire()
        old.write("set", keys.heartbeat, "1.0")
        old.write("hset", keys.sources, "feed", b"ok")
        assert r.get(keys.heartbeat) == b"1.0" and r.hget(keys.sources, "feed") == b"ok"
        r.delete(keys.lease)  # expired while `old` was paused
        assert new.acquire()
        assert old.token is not None
        with pytest.raises(LeaseLost):
            old.write("set", keys.heartbeat, "2.0")
        assert r.get(keys.heartbeat) == b"1.0"
        new.write("set", keys.heartbeat, "3.0")
        assert r.get(keys.heartbeat) == b"3.0"
        old.release()  # a stopping loader deletes only its own lease
        assert r.get(keys.lease) == new.token
    finally:
        old.release()
        new.release()


def test_a_clean_stop_hands_the_lease_over_at_once(r: redis.Redis) -> None:
    keys = Keys()
    first = Lease(r, keys, "first", lease_ms=60_000)
    second = Lease(r, keys, "second", lease_ms=60_000)
    try:
        assert first.acquire()
        assert not second.acquire() and second.standby_wait_s > 50  # told how long to wait
        epoch = first.epoch
        first.release()
        assert second.acquire() and second.epoch == epoch + 1
        assert r.get(keys.lease) == second.token
    finally:
        first.release()
        second.release()
