"""Admission control: a bound on the requests a process handles at once and on how long a
request waits to start; past either, 503 `overloaded` with Retry-After.

Offered more than it can serve, a server that admits everything answers everything late: the
queue grows until every answer, the ones that got through included, waits behind it (3× its
capacity took the unguarded service's p99 from ~5 ms to 154 ms). Cameras retry and a proxy
moves them to another replica, so a quick 503 is worth more than a late 200.

Two ways a request waits, both bounded by `server.max_queue_wait_ms`:

- for a slot: a request takes one (`server.max_in_flight`) before its handler runs and gives it
  back when its answer is ready. A request that arrives whole while every slot is taken is
  refused at once; one already parsed (its body came in parts, or it came in the same turn
  of the loop as others) waits in a FIFO, at most as long as the slots, for at most
  max_queue_wait_ms; a slot freed is handed to the oldest waiter directly, so none is
  overtaken. The admitted request pays one integer compare; a waiting one a future and a
  timer, no task.
- for the process: a process short of CPU falls behind its event loop, and requests wait,
  unseen by any counter, between the socket and their handler. A timer measures how late the
  loop runs it (its lag, every 5 ms); while it is late by more than max_queue_wait_ms twice
  running, the process refuses new requests.

Refusing must cost far less than answering, or refusing 3× the capacity takes more than the
capacity: so the connection (connections.py) answers a request that arrives whole itself,
with bytes written straight to the socket, before aiohttp parses it (~21 k instructions of
the server's own code, bench/bench_refusal.py, and ~18-24 µs of its CPU in an open loop on
loopback, half of that the kernel's TCP, which an admitted transit pays too; a 503 from the
route costs about as much as a routed transit). A camera's plain post, answered at its
connection too (fastpost.py, ~125 k instructions), costs only 2-3× a refusal: past ~1.5×
its capacity a process spends its core refusing, and the proxy in front must shed.

Health, readiness and metrics take no slot and are never refused: they must answer, and say
why, while the service is overloaded.

Sizing (Little's law): slots ≈ throughput × the latency to be kept. A transit that waits on
its group commit holds its slot through that wait, so the bound also covers a slow Redis.
That product moves (a slower Redis, a busier CPU, a loop also refusing 2× the capacity), so
the limit in force adapts to it (AIMD, as TCP's congestion window or Netflix's
concurrency-limits): every WINDOW_S, if more than a tenth of the requests completed in it
took longer than `server.target_latency_ms` from their first bytes at the connection (their
p90 is above it; the loop turns a request waits before its handler are what grows when the
process is overloaded) and the limit was reached (a request refused or queued for want of a
slot), the limit is cut by BACKOFF; if they were within it and the limit was reached, it
grows by STEP. Between MIN_IN_FLIGHT and max_in_flight; it starts at a
quarter of max_in_flight. Only completions of requests admitted after the last cut count
for the next one, so one cut is not repeated for the requests the old limit let in. Per
request: a timestamp and a compare on release. target_latency_ms 0: the limit is fixed.
What the connection cap (connections.py) does before a request exists is not repeated here.

A generous target does not help: at 50 ms the limit grew while the process refused 2× its
capacity, and the admitted p99 at 3× went to 1.5 s (10 ms: 31 ms). Behind nginx, max_conns
per replica (deploy/nginx.conf) bounds what reaches a replica, and its refusals cost the
replica nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import web

from ..config.settings import ServerSettings
from . import errors

# Routes that take no slot: they are cheap and are how an overloaded service is watched.
UNMETERED: Final = frozenset({"/healthz", "/readyz", "/metrics"})
PROBE_EVERY_S: Final = 0.005  # the loop-lag timer's period; at most a quarter of the bound
# The adaptive limit: how often it is decided, how far it falls when the latency is above the
# target and grows when within it and reached, and its floor (max_in_flight if lower).
WINDOW_S: Final = 0.1
BACKOFF: Final = 0.9
STEP: Final = 8
MIN_IN_FLIGHT: Final = 8
LATE_SHARE: Final = 10  # above the target: more than 1 in LATE_SHARE completions late (p90)
LIMITING_S: Final = 1.0  # the limit was reached this recently: cutting it can shed load


class Overloaded(errors.ApiError):
    status, code = 503, "overloaded"


class Admission:
    def __init__(self, limits: ServerSettings) -> None:
        self.ceiling = limits.max_in_flight
        self.floor = min(MIN_IN_FLIGHT, self.ceiling)
        self.target_s = limits.target_latency_s
        # The limit in force: fixed at max_in_flight without a target, else it adapts (above).
        self.limit = max(self.floor, self.ceiling // 4) if self.target_s > 0 else self.ceiling
        self._done = self._late = 0  # completions in this window, and those over the target
        self._reached = False  # a request refused or queued for want of a slot in this window
        self._limited_at = -LIMITING_S  # perf_counter of the last window in which it was
        self._since = 0.0  # perf_counter of the last cut: requests admitted before do not count
        self.cuts = self.raises = 0
        self.max_wait_s = limits.max_queue_wait_s
        self.retry_after_s = limits.retry_after_s
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self.lagging = False  # the loop runs later than max_queue_wait: refuse new requests
        # Requests let in by the connections since the last tick, whose handlers have not yet
        # started: a burst read in one turn of the loop counts against the slots at once.
        # Approximate (reset every tick, so a request that never reaches a handler, one
        # aiohttp refuses as malformed, is forgotten within milliseconds).
        self.arriving = 0
        self.lag_s = 0.0  # the last lag measured
        # 503s, by why: every slot taken (refused at once), or the queue full; no slot freed
        # within the bound; the loop later than the bound
        self.shed = {"in_flight": 0, "queue_full": 0, "queue_timeout": 0, "loop_lag": 0}
        self.detail = (
            f"overloaded: no request slot (server.max_in_flight {self.ceiling}"
            + (
                f", adapted to server.target_latency_ms {self.target_s * 1000:g}"
                if self.target_s > 0
                else ""
            )
            + ") or no time to "
            f"start within server.max_queue_wait_ms ({self.max_wait_s * 1000:g}); retry shortly"
        )

    def refuse_whole(self) -> str | None:
        """Why a request that arrives whole is refused before it is parsed (None: it is not),
        noting that the limit was reached: the connection's check (connections.py). Every
        slot taken refuses it at once rather than queue it: the queue is for requests
        already parsed (a body in parts, a burst in one turn of the loop), and waiting costs
        what a routed answer costs."""
        if self.lagging:
            return "loop_lag"
        if self.in_flight + self.arriving >= self.limit:
            self._reached = True
            return "in_flight"
        return None

    @property
    def queued(self) -> int:
        return sum(1 for w in self._waiters if not w.done())

    def enter(self) -> bool:
        """Take a slot if one is free (the handler runs); False: `wait` for one."""
        if self.arriving:
            self.arriving -= 1
        return self.take()

    def take(self) -> bool:
        """A slot, if one is free (also for a request the connection answers itself,
        fastpost.py)."""
        if self.in_flight < self.limit and not self.lagging:
            self.in_flight += 1
            return True
        self._reached = True
        return False

    async def wait(self) -> None:
        """Wait for a slot, in arrival order, at most max_queue_wait; Overloaded past it or
        when the queue is as long as the slots."""
        if self.lagging:  # (a request the connection could not answer itself)
            self.shed["loop_lag"] += 1
            raise self.refusal()
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

    def done(self, started: float, ended: float | None = None) -> None:
        """Give the slot back (`leave`) of a request that started at `started` and ended at
        `ended` (time.perf_counter(); None: now), counting its latency for the adaptive
        limit."""
        if self.target_s > 0 and started >= self._since:  # fixed limit: nothing to adapt
            self._done += 1
            if (time.perf_counter() if ended is None else ended) - started > self.target_s:
                self._late += 1
        self.leave()

    def leave(self) -> None:
        """Give the slot back: to the oldest waiter still waiting (unless the limit was cut
        below the requests in flight), else free it."""
        waiters = self._waiters
        while waiters and self.in_flight <= self.limit:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)  # the slot changes hands: in_flight is unchanged
                return
        self.in_flight -= 1

    def adapt(self) -> None:
        """The window's decision (called every WINDOW_S): cut the limit if the p90 of the
        requests completed in it was above the target, raise it if within it and reached."""
        done, late, reached = self._done, self._late, self._reached
        self._done = self._late = 0
        self._reached = False
        now = time.perf_counter()
        if reached:
            self._limited_at = now
        # Cut only a limit that limits: a request refused or queued for want of a slot within
        # LIMITING_S (the late requests completing now were admitted a while ago, when the
        # limit was reached). Latency above the target with the limit not reached comes from
        # elsewhere (a slow fsync, a busy CPU); cutting it would refuse a closed loop below
        # its own concurrency, its refusals come straight back and cost CPU, the admitted get
        # later, and the limit falls to its floor (at 10 ms: 83 % of a saturated closed loop
        # on 32 connections answered 503 and half its 200s lost; bench_overload --saturated).
        limiting = now - self._limited_at < LIMITING_S
        if limiting and late > 1 and late * LATE_SHARE > done:
            cut = max(self.floor, int(self.limit * BACKOFF))
            if cut < self.limit:
                self.limit, self.cuts = cut, self.cuts + 1
            self._since = now
        elif reached and done and self.limit < self.ceiling:
            self.limit, self.raises = min(self.ceiling, self.limit + STEP), self.raises + 1

    def status(self) -> dict[str, object]:
        """For /readyz."""
        return {
            "in_flight": self.in_flight,
            "in_flight_limit": self.limit,
            "max_in_flight": self.ceiling,
            "target_latency_ms": round(self.target_s * 1000, 3),
            "lagging": self.lagging,
        }

    def refusal(self) -> Overloaded:
        exc = Overloaded(self.detail)
        exc.retry_after = self.retry_after_s
        return exc

    async def probe(self, app: web.Application) -> AsyncIterator[None]:
        """A cleanup context: the loop-lag timer runs while the app does."""
        loop = asyncio.get_running_loop()
        every = min(PROBE_EVERY_S, self.max_wait_s / 4) or PROBE_EVERY_S
        bound = self.max_wait_s if self.max_wait_s > 0 else float("inf")  # 0: slots only
        handle: asyncio.TimerHandle | None = None
        adaptive = self.target_s > 0
        window_end = loop.time() + WINDOW_S
        late = False

        def tick(due: float) -> None:
            # Timers run first in a turn of the loop, before its socket events: a tick late by
            # more than the bound means the requests read in this turn waited about as long.
            # Late twice running is a queue (the process is behind: refuse); late once is a
            # pause (a collection, the CPU taken by another process) that is already over.
            nonlocal handle, late, window_end
            now = loop.time()
            if adaptive and now >= window_end:
                window_end = now + WINDOW_S
                self.adapt()
            self.lag_s = now - due
            self.lagging = late and self.lag_s > bound
            late = self.lag_s > bound
            self.arriving = 0
            handle = loop.call_at(now + every, tick, now + every)

        handle = loop.call_at(loop.time() + every, tick, loop.time() + every)
        try:
            yield
        finally:
            handle.cancel()
            self.lagging = False


ADMISSION: Final = web.AppKey("admission", Admission)  # for the connections (connections.py)


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
