"""Is a loader running? Asked by a replica for `/readyz`, and by the admin API before a write.

Without a loader nothing streams the permit database to the replicas: a permit issued then is
never enforced, and the index only ages (it turns unready after `index_max_age`, 26 h). The
active loader holds a lease in Redis (`Keys.lease`; loader/watch.py takes, renews and on a
clean stop deletes it) that expires by itself when the loader dies. The key's existence is the
whole contract read here; what the lease holds (identity, fencing token) and how long it lasts
are the loader's business.

A standby loader takes the lease over within one of its polls of the old one's expiry:
`GRACE_S` of absence is tolerated, so that a hand-over does not turn every replica unready at
once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

import redis.asyncio as aredis

from ..keys import Keys

GRACE_S: Final = 3.0


async def lease_held(r: aredis.Redis, keys: Keys) -> bool:
    """Whether a loader holds the lease now (raises the client's errors: Redis unreachable
    says nothing about the loader)."""
    return bool(await r.exists(keys.lease))


class LoaderPresence:
    """What a replica last saw of the loader's lease."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.seen: bool | None = None  # None: not asked yet (or Redis never answered)
        self.absent_since: float | None = None

    def observe(self, held: bool) -> None:
        self.seen = held
        if held:
            self.absent_since = None
        elif self.absent_since is None:
            self.absent_since = self.clock()

    def absent_for(self) -> float:
        """Seconds since the lease was last seen missing without a break (0 while held)."""
        return 0.0 if self.absent_since is None else self.clock() - self.absent_since

    @property
    def missing(self) -> bool:
        """No loader for longer than a hand-over takes."""
        return self.absent_since is not None and self.absent_for() >= GRACE_S
