"""Snapshots and permit changes over Redis: the layout the loader writes and replicas read.

Keys (under a prefix, default `varco`):

    {p}:snapshot:current      name of the current snapshot, set last: it never names a
                              snapshot whose chunks are not all there
    {p}:snapshots             sorted set of published snapshot names, scored by revision
    {p}:snapshot:{name}       hash: revision, size, chunks, digest (blake2b-256 of the file)
    {p}:snapshot:{name}:{i}   the file's bytes, in chunks of 8 MiB (a Redis string holds
                              512 MB at most; 10 M permits make a ~500 MB file)
    {p}:changes               stream of permit changes (changes.py): entry id `<revision>-1`
    {p}:loader:heartbeat      epoch seconds at which the loader last saw the permit database
                              wholly published: the freshness a replica can claim
    {p}:snapshot:wanted       set by a replica that missed changes: publish a snapshot soon
    {p}:wake                  pub/sub: wakes the loader early (after an admin API change);
                              a nudge, never data (pub/sub drops what nobody hears)
    {p}:loader:lease          the active loader's identity, expiring: one loader at a time
    {p}:sources               hash: feed name -> its SourceStatus (sources.py)
    {p}:audit                 stream: the police-lookup audit trail, hash-chained (audit.py)

The stream keeps the entries newer than the oldest snapshot still published, so a replica on
any published snapshot can catch up from the stream; an older one detects the gap (changes.py)
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import redis
import redis.asyncio as aredis

from ..core.snapshot import SUFFIX, fsync_dir, read_header
from . import failpoints

CHUNK: Final = 8 << 20
KEEP_SNAPSHOTS: Final = 2
ORPHAN_TTL_S: Final = 3600


class SnapshotUnavailable(Exception):
    """The snapshot named is not (or no longer wholly) in Redis, or its bytes are wrong."""


@dataclass(frozen=True, slots=True)
class Layout:
    prefix: str = "varco"

    @property
    def current(self) -> str:
        return f"{self.prefix}:snapshot:current"

    @property
    def snapshots(self) -> str:
        return f"{self.prefix}:snapshots"

    @property
    def changes(self) -> str:
        return f"{self.prefix}:changes"

    @property
    def heartbeat(self) -> str:
        return f"{self.prefix}:loader:heartbeat"

    @property
    def wanted(self) -> str:
        return f"{self.prefix}:snapshot:wanted"

    @property
    def sources(self) -> str:
        return f"{self.prefix}:sources"  # hash: feed name -> SourceStatus (JSON)

    @property
    def audit(self) -> str:
        return f"{self.prefix}:audit"  # stream, never trimmed: see audit.py

    @property
    def wake(self) -> str:
        return f"{self.prefix}:wake"

    def meta(self, name: str) -> str:
        return f"{self.prefix}:snapshot:{name}"

    def chunk(self, name: str, i: int) -> str:
        return f"{self.prefix}:snapshot:{name}:{i}"


def _valid_name(name: str) -> bool:
    return name.endswith(SUFFIX) and "/" not in name and not name.startswith(".")


# -- loader side (synchronous client) -------------------------------------------------------


def publish_snapshot(r: redis.Redis, layout: Layout, path: Path,
                     keep: int = KEEP_SNAPSHOTS) -> str:  # fmt: skip
    """Copy a verified snapshot file into Redis and make it current; prune old ones."""
    name = path.name
    head = read_header(path)
    meta: Any = r.hgetall(layout.meta(name))
    if meta:
        # Published already (meta is written only at a switch): re-uploading would put an
        # expiry on chunks replicas rely on. Point at it again if it is still whole.
        size, chunks, digest = int(meta[b"size"]), int(meta[b"chunks"]), meta[b"digest"].decode()
    else:
        size, chunks, digest = _upload(r, layout, path, name)
    failpoints.hit("publish_snapshot:before_switch")
    keys = [layout.meta(name), layout.snapshots, layout.current, layout.wanted,
            *(layout.chunk(name, i) for i in range(chunks))]  # fmt: skip
    if not r.eval(_SWITCH, len(keys), *keys, name, head["revision"], size, chunks, digest):
        # A chunk expired (an upload slower than ORPHAN_TTL_S) or was evicted: never switch
        # to a snapshot replicas could not fetch whole. The next attempt uploads it again.
        r.delete(layout.meta(name))
        raise SnapshotUnavailable(f"snapshot {name}: a chunk vanished before the switch")
    _prune(r, layout, keep)
    return name


# The switch, atomic and conditional: every chunk still there, then made permanent, described
# (meta) and current. KEYS: meta, snapshots, current, wanted, chunk 0..n-1.
_SWITCH: Final = """
for i = 5, #KEYS do
    if redis.call('exists', KEYS[i]) == 0 then return 0 end
end
for i = 5, #KEYS do redis.call('persist', KEYS[i]) end
redis.call('hset', KEYS[1], 'revision', ARGV[2], 'size', ARGV[3], 'chunks', ARGV[4],
           'digest', ARGV[5])
redis.call('zadd', KEYS[2], ARGV[2], ARGV[1])
redis.call('set', KEYS[3], ARGV[1])
redis.call('del', KEYS[4])
return 1
"""


def _upload(r: redis.Redis, layout: Layout, path: Path, name: str) -> tuple[int, int, str]:
    """Copy the file's chunks, expiring until the switch (a loader killed mid-copy leaves
    nothing behind); (size, chunks, digest)."""
    size = path.stat().st_size
    digest = hashlib.blake2b(digest_size=32)
    chunks = 0
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
            r.set(layout.chunk(name, chunks), block, ex=ORPHAN_TTL_S)
            chunks += 1
    return size, chunks, digest.hexdigest()


def _prune(r: redis.Redis, layout: Layout, keep: int) -> None:
    listed: Any = r.zrange(layout.snapshots, 0, -1)
    names = [n.decode() for n in listed]
    for old in names[:-keep]:
        meta: Any = r.hgetall(layout.meta(old))
        chunks = int(meta.get(b"chunks", 0))
        pipe = r.pipeline(transaction=True)
        pipe.zrem(layout.snapshots, old)
        pipe.delete(layout.meta(old), *[layout.chunk(old, i) for i in range(chunks)])
        pipe.execute()
    oldest: Any = r.zrange(layout.snapshots, 0, 0, withscores=True)
    if oldest:
        # Entries at or below the oldest published snapshot's revision are in every snapshot
        # a replica can still fetch: no one needs them.
        r.xtrim(layout.changes, minid=f"{int(oldest[0][1]) + 1}-0", approximate=False)


# -- replica side (asyncio client) ----------------------------------------------------------


async def current_snapshot(r: aredis.Redis, layout: Layout) -> tuple[str, int] | None:
    """(name, revision) of the current snapshot in Redis, or None when none is published."""
    raw: Any = await r.get(layout.current)
    if raw is None:
        return None
    name = raw.decode()
    revision = await r.hget(layout.meta(name), "revision")
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


async def fetch_snapshot(r: aredis.Redis, layout: Layout, name: str, directory: Path) -> Path:
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
        meta: Any = await r.hgetall(layout.meta(name))
        if not meta:
            raise SnapshotUnavailable(f"snapshot {name} is no longer published")
        size, chunks = int(meta[b"size"]), int(meta[b"chunks"])
        digest = hashlib.blake2b(digest_size=32)
        fd, tmp = tempfile.mkstemp(prefix=".fetch-", suffix=SUFFIX, dir=directory)
        try:
            with os.fdopen(fd, "wb") as f:
                for i in range(chunks):
                    block: Any = await r.get(layout.chunk(name, i))
                    if block is None:
                        raise SnapshotUnavailable(f"snapshot {name}: chunk {i} missing")
                    digest.update(block)
                    f.write(block)
                f.flush()
                # Off the event loop: fsyncing hundreds of MB would stall every request.
                await asyncio.to_thread(os.fsync, f.fileno())
                written = f.tell()
            if written != size or digest.hexdigest() != meta[b"digest"].decode():
                raise SnapshotUnavailable(f"snapshot {name}: size or digest differs from "
                                          "the published one")  # fmt: skip
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        await asyncio.to_thread(fsync_dir, directory)
    return target
