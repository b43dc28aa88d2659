"""Snapshots in Redis: a publish is invisible until its switch, whole after it, and publishing
a snapshot that is already there again never endangers the copy replicas rely on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgspec
import pytest
import redis
import redis.asyncio as aredis

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.core.snapshot import open_snapshot
from enforcement.keys import Keys
from enforcement.replica import distribution
from enforcement.replica.distribution import SnapshotUnavailable, fetch_snapshot, publish_snapshot
from enforcement.replica.redis_server import EmbeddedRedis
from loader.database import open_db
from loader.rebuild import rebuild

from ..support.api import PERMITS


def snapshot(settings: Settings, rules: Rules) -> Path:
    with open_db(settings) as db:
        db.upsert(PERMITS)
        return rebuild(db, rules, settings.storage.snapshot_dir, settings.storage.history_days).path


def test_published_snapshot_is_whole_and_republishing_keeps_it(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    settings, rules = demo
    path = snapshot(settings, rules)
    r, keys = redis.Redis.from_url(redis_server.url), Keys()
    name = publish_snapshot(r, keys, path)
    chunk_keys = r.keys(keys.snapshot_meta(name) + ":*")
    assert chunk_keys and all(r.ttl(k) == -1 for k in chunk_keys)  # permanent once current
    sets = r.info("commandstats")["cmdstat_set"]["calls"]
    # Again, as when a replica asks and nothing changed: re-uploading would put an expiry on
    # the live chunks until the switch, and a loader dying then would let them vanish.
    assert publish_snapshot(r, keys, path) == name
    assert r.info("commandstats")["cmdstat_set"]["calls"] == sets + 1  # the pointer only
    assert all(r.ttl(k) == -1 for k in chunk_keys)
    assert r.get(keys.current) == name.encode()

    async def fetch() -> Path:
        client = aredis.Redis.from_url(redis_server.url)
        try:
            return await fetch_snapshot(client, keys, name, tmp_path / "replica")
        finally:
            await client.aclose()

    copy = asyncio.run(fetch())
    assert copy.read_bytes() == path.read_bytes()
    assert open_snapshot(copy).permit_count == len(PERMITS)
    r.close()


def test_a_chunk_lost_before_the_switch_never_becomes_current(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, rules = demo
    first = snapshot(settings, rules)
    r, keys = redis.Redis.from_url(redis_server.url), Keys()
    publish_snapshot(r, keys, first)
    with open_db(settings) as db:  # a newer snapshot
        db.upsert([msgspec.structs.replace(PERMITS[0], permit_id="NEW-1")])
        second = rebuild(
            db, rules, settings.storage.snapshot_dir, settings.storage.history_days
        ).path

    def evict(name: str) -> None:  # as an eviction or an upload slower than the chunks' TTL
        if name == "publish_snapshot:before_switch":
            r.delete(keys.snapshot_chunk(second.name, 0))

    monkeypatch.setattr(distribution.failpoints, "hit", evict)
    with pytest.raises(SnapshotUnavailable, match="vanished"):
        publish_snapshot(r, keys, second)
    assert r.get(keys.current) == first.name.encode()  # replicas keep the whole one
    assert not r.exists(keys.snapshot_meta(second.name))
    monkeypatch.undo()
    assert publish_snapshot(r, keys, second) == second.name  # the next attempt re-uploads
    assert r.get(keys.current) == second.name.encode()
    r.close()
