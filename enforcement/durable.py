"""Whether a Redis keeps what it acknowledged through a crash, and how.

The transit log and the audit trail acknowledge a write only once Redis would keep it through
`kill -9`: with `appendonly yes` and `appendfsync always` (Redis fsyncs before it replies), or
on Redis 7.2+ with any fsync policy followed by `WAITAOF` on the same connection. Any other
setting gets no writes, and the reason is shown in /readyz. Nor does a Redis whose
`maxmemory-policy` would evict keys to make room (memory.py): it would lose them later.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aredis
from redis.exceptions import OutOfMemoryError

from .memory import SAFE_POLICY, eviction_problem


class NotDurable(Exception):
    """Redis answers but would not keep an acknowledged write through a crash."""


async def needs_waitaof(r: aredis.Redis, losing: str) -> bool:
    """False: Redis fsyncs before replying. True: only WAITAOF after a write makes it durable.
    Raises NotDurable (its message saying a crash would lose `losing`) when neither holds."""
    try:
        cfg: Any = await r.config_get("append*")
    except aredis.ResponseError as exc:  # CONFIG renamed or disabled (a managed Redis)
        raise NotDurable(f"cannot read Redis's persistence settings ({exc})") from None
    policy: Any = await r.config_get("maxmemory-policy")
    problem = eviction_problem(str(policy.get("maxmemory-policy", SAFE_POLICY)))
    if problem is not None:
        raise NotDurable(problem)
    if cfg.get("appendonly") != "yes":
        raise NotDurable(
            f"Redis has appendonly=no: a Redis crash would lose {losing} "
            "(set appendonly yes, appendfsync always)"
        )
    if cfg.get("appendfsync") == "always":
        return False
    info: Any = await r.info("server")
    version = str(info.get("redis_version", "0"))
    if tuple(int(x) for x in version.split(".")[:2]) >= (7, 2):
        return True
    raise NotDurable(
        f"Redis {version} has appendfsync={cfg.get('appendfsync')} and no "
        "WAITAOF: set appendfsync always"
    )


def describe(exc: BaseException) -> str:
    """A Redis write's failure, for the log and /readyz."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OutOfMemoryError):
        return "OOM: Redis is at its maxmemory and refuses writes"
    return f"{type(exc).__name__}: {exc}"
