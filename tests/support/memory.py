"""Redis at its memory ceiling, as the tests make it: a small Redis of our own (maxmemory,
noeviction, as Varco starts its own), filled with filler keys to a share of its maxmemory or
until it refuses writes, and emptied again."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import redis

from enforcement.replica.redis_server import EmbeddedRedis

SMALL: Final = 8 << 20  # enough for Redis itself (~1 MB) and a few thousand transits
FILLER: Final = "filler:"  # no Varco key starts so


def small_redis(directory: Path, max_memory: int = SMALL) -> EmbeddedRedis:
    server = EmbeddedRedis(directory, max_memory)
    server.start()
    return server


def memory(r: redis.Redis) -> tuple[int, int]:
    """(used_memory, maxmemory)."""
    info: Any = r.info("memory")
    return int(info["used_memory"]), int(info["maxmemory"])


def fill(r: redis.Redis, share: float | None = None) -> int:
    """Filler keys until used_memory reaches `share` of maxmemory, or (None) until Redis
    refuses even a small write for want of memory; how many were written. (A large write
    refused counts its own argument as used: smaller ones follow, so that no transit fits.)"""
    n = 0
    for size in (32 << 10, 1 << 10, 64):
        while True:
            used, ceiling = memory(r)
            assert ceiling > 0, "this Redis has no maxmemory"
            if share is not None and used >= share * ceiling:
                return n
            try:
                r.set(f"{FILLER}{n}", b"x" * size)
            except redis.exceptions.OutOfMemoryError:
                assert share is None, "the ceiling came before the share"
                break
            n += 1
    return n


def empty(r: redis.Redis) -> int:
    """Delete the filler keys; how many."""
    keys = list(r.scan_iter(f"{FILLER}*", count=1000))
    for start in range(0, len(keys), 500):
        r.unlink(*keys[start : start + 500])
    return len(keys)
