"""Snapshots and permit changes over Redis: the keys the loader writes and replicas read.

A snapshot is published as chunks that expire until one Lua call makes them permanent and
names them current, so a loader killed at any point never leaves a half-written snapshot
current; the key names are in `enforcement.keys`.

The loader passes its fencing token (loader/lease.py): the switch happens only while the lease
still holds it, so a loader that lost its lease during a long rebuild never makes its snapshot
current over the active loader's.

The stream keeps the entries newer than the oldest snapshot still published, so a replica on
any published snapshot can catch up from the stream; an older one detects the gap (core/changes.py)
and fetches the current snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import redis
import redis.asyncio as aredis

from ..core.snapshot import SUFFIX, fsync_dir, read_header
from ..keys import Keys
from . import failpoints

CHUNK: Final = 8 << 20
KEEP_SNAPSHOTS: Final = 2
ORPHAN_TTL_S: Final = 3600


class SnapshotUnavailable(Exception):
    """The snapshot named is not (or no longer wholly) in Redis, or its bytes are wrong."""


class LeaseLost(Exception):
    """The writer's fencing token is no longer the loader lease's value: it must not write."""


def _valid_name(name: str) -> bool:
    return name.endswith(SUFFIX) and "/" not in name and not name.startswith(".")


# -- loader side (synchronous client) -------------------------------------------------------


def publish_snapshot(
    r: redis.Redis,
    keys: Keys,
    path: Path,
    keep: int = KEEP_SNAPSHOTS,
    token: bytes | None = None,
) -> str:
    """Copy a verified snapshot file into Redis and make it current; prune old ones. With a
    fencing `token`, only while the loader lease holds it (else LeaseLost, nothing switched)."""
    name = path.name
    head = read_header(path)
    meta: Any = r.hgetall(keys.snapshot_meta(name))
    if meta:
        # Published already (meta is written only at a switch): re-uploading would put an
        # expiry on chunks replicas rely on. Point at it again if it is still whole.
        size, chunks, digest = int(meta[b"size"]), int(meta[b"chunks"]), meta[b"digest"].decode()
    else:
        size, chunks, digest = _upload(r, keys, path, name)
    failpoints.hit("publish_snapshot:before_switch")
    names = [
        keys.snapshot_meta(name),
        keys.snapshots,
        keys.current,
        keys.wanted,
        keys.lease,
        *(keys.snapshot_chunk(name, i) for i in range(chunks)),
    ]
    args = (name, head["revision"], size, chunks, digest, token or b"")
    switched = r.eval(_SWITCH, len(names), *names, *args)
    if switched == -1:  # chunks stay expiring: nothing of this snapshot outlives the hour
        raise LeaseLost(f"snapshot {name}: not switched, the loader lease was taken")
    if not switched:
        # A chunk expired (an upload slower than ORPHAN_TTL_S) or was evicted: never switch
        # to a snapshot replicas could not fetch whole. The next attempt uploads it again.
        r.delete(keys.snapshot_meta(name))
        raise SnapshotUnavailable(f"snapshot {name}: a chunk vanished before the switch")
    _prune(r, keys, keep)
    return name


# The switch, atomic and conditional: the lease still the writer's (when it gave a token), every
# chunk still there, then made permanent, described (meta) and current.
# KEYS: meta, snapshots, current, wanted, lease, chunk 0..n-1.
_SWITCH: Final = """
if ARGV[6] ~= '' and redis.call('get', KEYS[5]) ~= ARGV[6] then return -1 end
for i = 6, #KEYS do
    if redis.call('exists', KEYS[i]) == 0 then return 0 end
end
for i = 6, #KEYS do redis.call('persist', KEYS[i]) end
redis.call('hset', KEYS[1], 'revision', ARGV[2], 'size', ARGV[3], 'chunks', ARGV[4],
           'digest', ARGV[5])
redis.call('zadd', KEYS[2], ARGV[2], ARGV[1])
redis.call('set', KEYS[3], ARGV[1])
redis.call('del', KEYS[4])
return 1
"""


def _upload(r: redis.Redis, keys: Keys, path: Path, name: str) -> tuple[int, int, str]:
    """Copy the file's chunks, expiring until the switch (a loader killed mid-copy leaves
    nothing behind); (size, chunks, digest)."""
    size = path.stat().st_size
    digest = hashlib.blake2b(digest_size=32)
    chunks = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            r.set(keys.snapshot_chunk(name, chunks), block, ex=ORPHAN_TTL_S)
            chunks += 1
    return size, chunks, digest.hexdigest()


def _prune(r: redis.Redis, keys: Keys, keep: int) -> None:
    listed: Any = r.zrange(keys.snapshots, 0, -1)
    names = [n.decode() for n in listed]
    for old in names[:-keep]:
        meta: Any = r.hgetall(keys.snapshot_meta(old))
        chunks = int(meta.get(b"chunks", 0))
        pipe = r.pipeline(transaction=True)
        pipe.zrem(keys.snapshots, old)
        pipe.delete(keys.snapshot_meta(old), *[keys.snapshot_chunk(old, i) for i in range(chunks)])
        pipe.execute()
    oldest: Any = r.zrange(keys.snapshots, 0, 0, withscores=True)
    if oldest:
        # Entries at or below the oldest published snapshot's revision are in every snapshot
        # a replica can still fetch: no one needs them.
        r.xtrim(keys.changes, minid=f"{int(oldest[0][1]) + 1}-0", approximate=False)


# -- replica side (asyncio client) ----------------------------------------------------------


async def current_snapshot(r: aredis.Redis, keys: Keys) -> tuple[str, int] | None:
    """(name, revision) of the current snapshot in Redis, or None when none is published."""
    raw: Any = await r.get(keys.current)
    if raw is None:
        return None
    name = raw.decode()
    revision = await r.hget(keys.snapshot_meta(name), "revision")
    if revision is None or not _valid_name(name):
        return None
    return name, int(revision)


@contextlib.asynccontextmanager
async def _directory_lock(directory: Path) -> AsyncIterator[None]:
    """One download at a time per directory: the workers of a host share one file. Polled
    (LOCK_NB), so a worker waiting for another's download keeps serving requests."""
    fd = os.open(directory / ".fetch.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.1)
        yield
    finally:
        os.close(fd)


async def fetch_snapshot(r: aredis.Redis, keys: Keys, name: str, directory: Path) -> Path:
    """The snapshot `name` as a local file in `directory`, downloading it if needed.

    The file is written under a temporary name, fsynced, checked against the published size
    and digest, and only then renamed into place. The caller still verifies it (open_snapshot)
    before use.
    """
    if not _valid_name(name):
        raise SnapshotUnavailable(f"bad snapshot name {name!r}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    if target.exists():
        return target
    async with _directory_lock(directory):
        if target.exists():  # another worker of this host fetched it meanwhile
            return target
        meta: Any = await r.hgetall(keys.snapshot_meta(name))
        if not meta:
            raise SnapshotUnavailable(f"snapshot {name} is no longer published")
        size, chunks = int(meta[b"size"]), int(meta[b"chunks"])
        digest = hashlib.blake2b(digest_size=32)
        fd, tmp = tempfile.mkstemp(prefix=".fetch-", suffix=SUFFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                for i in range(chunks):
                    block: Any = await r.get(keys.snapshot_chunk(name, i))
                    if block is None:
                        raise SnapshotUnavailable(f"snapshot {name}: chunk {i} missing")
                    digest.update(block)
                    f.write(block)
                f.flush()
                # Off the event loop: fsyncing hundreds of MB would stall every request.
                await asyncio.to_thread(os.fsync, f.fileno())
                written = f.tell()
            if written != size or digest.hexdigest() != meta[b"digest"].decode():
                raise SnapshotUnavailable(
                    f"snapshot {name}: size or digest differs from the published one"
                )
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        await asyncio.to_thread(fsync_dir, directory)
    return target
