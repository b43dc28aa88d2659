"""Admission control: a bound on the requests a process handles at once, and a short, bounded
wait for a slot; past either, 503 `overloaded` with Retry-After.

Offered more than it can serve, a server that admits everything answers everything late: the
queue grows until every answer, the ones that got through included, waits behind it (3× its
capacity took the unguarded service's p99 from ~5 ms to 154 ms). Cameras retry and a proxy
moves them to another replica, so a quick 503 is worth more than a late 200.

A request takes a slot (`server.max_in_flight`) before its handler runs and gives it back when
its answer is ready. With every slot taken it waits in a FIFO, at most as long as the slots
(a longer queue only adds waiting), for at most `server.max_queue_wait_ms`; a slot freed is
handed to the oldest waiter directly, so none is overtaken. The admitted request pays one
integer compare; a waiting one a future and a timer, no task. Health, readiness and metrics
take no slot: they must answer, and say why, while the service is overloaded.

Sizing (Little's law): slots ≈ throughput × the latency to be kept. A transit that waits on
its group commit holds its slot through that wait, so the bound also covers a slow Redis.
What the connection cap (connections.py) does before a request exists is not repeated here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Final

from ..config.settings import ServerSettings
from . import errors

# Routes that take no slot: they are cheap and are how an overloaded service is watched.
UNMETERED: Final = frozenset({"/healthz", "/readyz", "/metrics"})


class Overloaded(errors.ApiError):
    status, code = 503, "overloaded"


class Admission:
    def __init__(self, limits: ServerSettings) -> None:
        self.limit = limits.max_in_flight
        self.max_wait_s = limits.max_queue_wait_s
        self.retry_after_s = limits.retry_after_s
        self.in_flight = 0
        self.peak = 0  # the most requests in flight at once since start
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self.shed = {"queue_full": 0, "queue_timeout": 0}  # 503s, by why

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def enter(self) -> bool:
        """Take a slot if one is free (the handler runs); False: `wait` for one."""
        if self.in_flight < self.limit:
            self.in_flight += 1
            if self.in_flight > self.peak:
                self.peak = self.in_flight
            return True
        return False

    async def wait(self) -> None:
        """Wait for a slot, in arrival order, at most max_queue_wait; Overloaded past it or
        when the queue is as long as the slots."""
        waiters = self._waiters
        while waiters and waiters[0].done():  # timed out (timeouts expire in FIFO order)
            waiters.popleft()
        if len(waiters) >= self.limit or self.max_wait_s <= 0:
            self.shed["queue_full"] += 1
            raise self.refusal()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        timer = loop.call_later(self.max_wait_s, _expire, waiter)
        waiters.append(waiter)
        try:
            handed = await waiter
        except asyncio.CancelledError:
            # Cancelled after a slot was handed over but before it resumed: pass it on.
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.leave()
            raise
        finally:
            timer.cancel()
        if not handed:
            self.shed["queue_timeout"] += 1
            raise self.refusal()

    def leave(self) -> None:
        """Give the slot back: to the oldest waiter still waiting, else free it."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot changes hands: in_flight is unchanged
                return
        self.in_flight -= 1

    def refusal(self) -> Overloaded:
        exc = Overloaded(
            f"overloaded: {self.limit} requests in flight (server.max_in_flight) and none "
            f"freed within server.max_queue_wait_ms ({self.max_wait_s * 1000:g}); retry shortly"
        )
        exc.retry_after = self.retry_after_s
        return exc


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
