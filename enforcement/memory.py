"""Redis's memory: a ceiling, a policy that never evicts evidence, and a watch on both.

Redis holds evidence: the transit stream and what is remembered of each camera event, the
violations and the review queue, the police audit trail. Each recorded transit costs ~400-520
bytes for a day, so a camera key flooding unique events would grow it by gigabytes an hour;
hence a ceiling (`[redis] max_memory`). What happens at it is chosen here:

- `maxmemory-policy noeviction`: at the ceiling Redis refuses writes (OOM errors) and keeps
  everything it has. The transit log then records to its local fsynced spool, exactly as when
  Redis is down (transits/log.py), and replays it in order once memory is freed; a full spool
  answers 503 with Retry-After. A police lookup whose audit record cannot be written is
  refused (503). Nothing acknowledged is lost and nothing answers 500.
- Any other policy (`allkeys-*`, `volatile-*`) makes room by deleting keys, evidence among
  them (violations and event memory carry expiries, so `volatile-*` too). `varco serve`
  refuses to start on such a Redis (`check_at_startup`), and one switched to such a policy
  while running is not trusted with transits or audit records (durable.py, and the watch
  below), which then go to the spool or are refused until it is set back.

Varco's own Redis is started with `maxmemory` = `[redis] max_memory` and `noeviction`
(replica/redis_server.py). An external Redis is not reconfigured: its own `maxmemory` is the
ceiling, and `[redis] max_memory` stands in (watched, not enforced) only where it has none.

Each process reads `INFO memory` every `[redis] memory_poll_s` (one reply of ~1 KB) for
/readyz (a warning past `[redis] memory_warn` of the ceiling) and /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable
from typing import Any, Final

import redis
import redis.asyncio as aredis

log = logging.getLogger(__name__)

SAFE_POLICY: Final = "noeviction"


class EvictingRedis(Exception):
    """The Redis would delete evidence to make room: Varco does not run on it."""


def eviction_problem(policy: str) -> str | None:
    """Why `policy` is unfit for evidence, or None for `noeviction`."""
    if policy == SAFE_POLICY:
        return None
    return (
        f"Redis has maxmemory-policy {policy}: at its maxmemory it would delete keys, evidence "
        "among them (transits, violations, the audit trail); set maxmemory-policy noeviction"
    )


def _gib(n: float) -> str:
    return f"{n / (1 << 30):.2f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def check_at_startup(url: str, configured_max: int) -> None:
    """Refuse (EvictingRedis) a Redis whose policy would evict; warn when nothing bounds its
    memory. A Redis that does not answer yet is left to the running checks (the transit log
    spools until it answers, durable and safe)."""
    r = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        info: Any = r.info("memory")
    except redis.RedisError as exc:
        log.warning("Redis memory settings not checked at start-up (%s)", type(exc).__name__)
        return
    finally:
        r.close()
    problem = eviction_problem(str(info.get("maxmemory_policy", SAFE_POLICY)))
    if problem is not None:
        raise EvictingRedis(problem)
    maxmemory = int(info.get("maxmemory", 0))
    if maxmemory == 0 and configured_max == 0:
        log.warning("Redis has no maxmemory and [redis] max_memory is 0: nothing bounds its memory")
    elif maxmemory == 0:
        log.warning(
            "Redis has no maxmemory: watching it against [redis] max_memory (%s), which "
            "it does not enforce; set maxmemory on the Redis",
            _gib(configured_max),
        )


class MemoryState(enum.IntEnum):
    """The /metrics gauge's values."""

    UNKNOWN = -1  # not read yet, or Redis does not answer
    OK = 0
    WARN = 1  # past `memory_warn` of the ceiling
    FULL = 2  # at the ceiling: writes refused (transits to the spool)


class MemoryWatch:
    """`INFO memory` every `poll_s`: used bytes, the ceiling, the policy, a state."""

    def __init__(
        self,
        url: str,
        *,
        configured_max: int,
        warn_fraction: float,
        poll_s: float,
        on_evicting: Callable[[str], None] | None = None,
        refusing: Callable[[], bool] | None = None,
    ) -> None:
        self.url, self.configured_max = url, configured_max
        self.warn_fraction, self.poll_s = warn_fraction, poll_s
        self.on_evicting = on_evicting  # told why, each poll while the policy would evict
        # Whether Redis refused our last write for want of memory: at rest used_memory stays
        # just under maxmemory (a refused command's own arguments counted), so this decides.
        self.refusing = refusing
        self.used = 0
        self.ceiling = 0  # 0: none known
        self.enforced = False  # the ceiling is Redis's own maxmemory (else ours, watched)
        self.policy: str | None = None
        self.state = MemoryState.UNKNOWN
        self.last_error: str | None = None
        self._redis: aredis.Redis | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._redis = aredis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)
        self._task = asyncio.create_task(self._loop(), name="redis-memory-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._redis is not None:
            await self._redis.aclose()

    async def _loop(self) -> None:
        task = asyncio.current_task()
        while True:
            await self.poll()
            # A cancel that lands while the Redis client reads a reply can come out of it as
            # a connection error (caught in poll): the cancel stays requested, so honour it
            # here, or stop() waits forever (a `varco serve` on a taken port never exited).
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(self.poll_s)

    async def poll(self) -> None:
        assert self._redis is not None
        try:
            info: Any = await self._redis.info("memory")
        except Exception as exc:  # down, timed out, a reply not understood: keep watching
            self.state, self.last_error = MemoryState.UNKNOWN, type(exc).__name__
            return
        self.last_error = None
        self.update(
            int(info.get("used_memory", 0)),
            int(info.get("maxmemory", 0)),
            str(info.get("maxmemory_policy", SAFE_POLICY)),
        )

    def update(self, used: int, maxmemory: int, policy: str) -> None:
        was = self.state
        self.used, self.policy = used, policy
        self.enforced = maxmemory > 0
        self.ceiling = maxmemory or self.configured_max
        if self.ceiling == 0:
            self.state = MemoryState.OK
        elif used >= self.ceiling or (
            self.refusing is not None
            and self.refusing()
            and used >= self.ceiling * self.warn_fraction
        ):
            self.state = MemoryState.FULL
        elif used >= self.ceiling * self.warn_fraction:
            self.state = MemoryState.WARN
        else:
            self.state = MemoryState.OK
        if self.state != was and (was != MemoryState.UNKNOWN or self.state >= MemoryState.WARN):
            log.warning("Redis memory: %s", self.describe())
        problem = eviction_problem(policy)
        if problem is not None and self.on_evicting is not None:
            self.on_evicting(problem)

    def describe(self) -> str:
        if self.state == MemoryState.UNKNOWN:
            return f"not read ({self.last_error or 'not yet'})"
        if self.ceiling == 0:
            return f"{_gib(self.used)} used, no ceiling"
        share = f"{self.used / self.ceiling:.0%} of its ceiling ({_gib(self.used)} of "
        share += f"{_gib(self.ceiling)}{'' if self.enforced else ', [redis] max_memory'})"
        if self.state == MemoryState.FULL:
            after = (
                "writes refused: transits go to the local spool until memory is freed"
                if self.enforced
                else "Redis does not enforce it: set maxmemory on the Redis"
            )
            return f"full, {share}; {after}"
        if self.state == MemoryState.WARN:
            return f"{share}; at 100% transits go to the local spool"
        return share

    def warnings(self) -> list[str]:
        """For /readyz: memory past the warning share, or a policy that would evict."""
        out = []
        if self.state >= MemoryState.WARN:
            out.append(f"Redis memory at {self.describe()}")
        if self.policy is not None:
            problem = eviction_problem(self.policy)
            if problem is not None:
                out.append(f"{problem}; transits go to the local spool meanwhile")
        return out

    def status(self) -> dict[str, object]:
        return {
            "state": self.state.name.lower(),
            "used_bytes": self.used,
            "max_bytes": self.ceiling,
            "enforced": self.enforced,
            "warn_fraction": self.warn_fraction,
            "policy": self.policy,
            "last_error": self.last_error,
        }
