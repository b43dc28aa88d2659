"""The adaptive in-flight limit (enforcement/http/admission.py): its decisions, on a live
server under a Redis made slow and fast again, and the clock it judges a request by.

Slow handling is real: Redis is told to hold every write (CLIENT PAUSE WRITE)."""

from __future__ import annotations

import asyncio
import re
import time

import redis
from aiohttp import web

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.admission import BACKOFF, Admission
from enforcement.http.app import create_app
from enforcement.http.service import SERVICE
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.api import PERMITS, Client, serving
from ..support.common import publish_permits
from .test_admission import post


def test_the_limit_is_cut_when_the_p90_is_over_the_target_and_raised_when_reached_within_it(
    demo: tuple[Settings, Rules],
) -> None:
    """The adaptive limit's decisions (admission.adapt, every WINDOW_S on a live server)."""
    server = {"max_in_flight": 40, "max_queue_wait_s": 0.2, "target_latency_s": 0.01}
    admission = Admission(with_changes(demo[0], server=server).server)
    assert (admission.limit, admission.floor) == (10, 8)  # a quarter of max_in_flight

    def complete(fast: int, late: int) -> None:
        started = time.perf_counter()
        time.sleep(0.012)  # past the 10 ms target
        for _ in range(late):
            assert admission.enter()
            admission.done(started)
        for _ in range(fast):
            assert admission.enter()
            admission.done(time.perf_counter())

    def reach() -> None:  # every slot taken and one more asked for, then all given back
        held = 0
        while admission.enter():
            held += 1
        for _ in range(held):
            admission.leave()

    complete(fast=4, late=2)  # the p90 over the target, but the limit never reached: the
    admission.adapt()  # latency comes from elsewhere (a slow fsync), cutting would not help
    assert admission.limit == 10 and admission.cuts == 0
    complete(fast=10, late=0)  # within the target, but the limit never reached: kept
    admission.adapt()
    assert admission.limit == 10
    assert all(admission.enter() for _ in range(10)) and not admission.enter()  # reached
    for _ in range(10):
        admission.done(time.perf_counter())
    admission.adapt()
    assert admission.limit == 18 and admission.raises == 1  # + STEP
    complete(fast=19, late=1)  # one late in 20: a pause, not a queue
    admission.adapt()
    assert admission.limit == 18
    complete(fast=16, late=2)  # 2 of 18 late: the p90 is over the target, the limit limits
    reach()
    admission.adapt()
    cut = int(18 * BACKOFF)
    assert admission.limit == cut and admission.cuts == 1
    # Requests admitted before the cut, late, do not cut it again
    before = time.perf_counter() - 0.05
    for _ in range(5):
        assert admission.enter()
        admission.done(before)
    reach()
    admission.adapt()
    assert admission.limit == cut
    for _ in range(10):  # never below the floor
        complete(fast=0, late=5)
        reach()
        admission.adapt()
    assert admission.limit == 8
    for _ in range(10):  # never above max_in_flight
        assert all(admission.enter() for _ in range(admission.limit)) and not admission.enter()
        for _ in range(admission.limit):
            admission.done(time.perf_counter())
        admission.adapt()
    assert admission.limit == 40 and admission.in_flight == 0

    fixed = Admission(with_changes(demo[0], server=server | {"target_latency_s": 0}).server)
    assert fixed.limit == 40  # no target: max_in_flight, fixed


async def test_the_limit_falls_while_handling_is_slow_and_recovers_when_it_is_fast_again(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> None:
    """A live server: Redis made slow (writes held 300 ms) → the in-flight limit falls to its
    floor; Redis fast again under load → it grows past where it started. Every admitted
    answer is right throughout (`post` checks each 200 is for its own transit)."""
    settings, rules = demo
    settings = with_changes(
        settings,
        server={
            "snapshot_poll_s": 0.05,
            "max_in_flight": 64,
            "max_queue_wait_s": 0.05,
            "target_latency_s": 0.05,
        },
        transit_log={"write_timeout_s": 5.0},  # a paused Redis is waited for, not spooled
    )
    publish_permits(settings, rules, PERMITS)
    app = create_app(settings, rules, transit_redis_url=redis_server.url)

    async def limit(client: Client) -> int:
        """The limit as /metrics and /readyz both show it (a window's decision may fall
        between the two reads: then read again)."""
        for _ in range(20):
            metrics = (await client.request("GET", "/metrics"))[1]
            found = re.search(r"^varco_http_in_flight_limit (\d+)$", metrics, re.M)
            assert found is not None
            ready = (await client.request("GET", "/readyz"))[1]
            if ready["admission"]["in_flight_limit"] == int(found[1]):
                return int(found[1])
        raise AssertionError(f"/metrics {found[1]} and /readyz {ready['admission']} disagree")

    async def flood(client: Client, n: int) -> list[int]:
        plates = [f"AD{i:03d}EF" for i in range(n)]
        statuses = [res[0] for res in await asyncio.gather(*(post(client, p) for p in plates))]
        assert set(statuses) <= {200, 503} and 200 in statuses, statuses
        return statuses

    async with serving(app) as (_, client):
        assert (await post(client, "AB123CD"))[0] == 200  # the transit log is connected
        assert await limit(client) == 16  # a quarter of max_in_flight
        r = redis.Redis.from_url(redis_server.url)
        seen = [16]
        for _ in range(12):  # each slow window cuts it (× BACKOFF) down to the floor, 8
            r.execute_command("CLIENT", "PAUSE", 200, "WRITE")
            await flood(client, 40)  # more than the limit: it limits
            await asyncio.sleep(0.25)  # a window passes: the decision is taken
            seen.append(await limit(client))
            if seen[-1] == 8:
                break
        assert seen[-1] == 8, seen  # (a first flood may find it raised, then cut)

        deadline = time.monotonic() + 10
        while seen[-1] < 32 and time.monotonic() < deadline:  # fast again, under load
            await flood(client, 80)
            await asyncio.sleep(0.02)
            seen.append(await limit(client))
        assert seen[-1] >= 32, seen
        r.close()


async def test_a_requests_latency_for_the_limit_runs_from_its_first_bytes(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> None:
    """The adaptive limit judges a request by the time since its bytes reached the connection,
    not since its handler started: under overload what grows is the wait in between. Two
    requests read in one turn of the loop, the first handler holding the loop 0.3 s: the
    second counts those 0.3 s though its own handler took a moment."""
    settings, rules = demo
    settings = with_changes(settings, server={"snapshot_poll_s": 0.05})
    publish_permits(settings, rules, PERMITS)
    app = create_app(settings, rules, transit_redis_url=redis_server.url)
    service = app[SERVICE]
    measured: dict[str, float] = {}
    done = service.admission.done

    async def hold(request: web.Request) -> web.Response:
        time.sleep(0.3)  # a handler that keeps the loop busy, as a burst of work would
        return web.Response(text="held")

    async def quick(request: web.Request) -> web.Response:
        return web.Response(text="quick")

    def noting(started: float, ended: float | None = None) -> None:  # what the limit is told
        measured[str(len(measured))] = (ended or time.perf_counter()) - started
        done(started, ended)

    service.admission.done = noting  # type: ignore[method-assign]
    app.router.add_route("POST", "/test/hold", service.endpoint("/test/hold", hold))
    app.router.add_route("POST", "/test/quick", service.endpoint("/test/quick", quick))
    async with serving(app) as (server, _):
        conns = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(2)]
        for (_, writer), path in zip(conns, (b"/test/hold", b"/test/quick"), strict=True):
            writer.write(b"POST %s HTTP/1.1\r\nHost: varco\r\nContent-Length: 0\r\n\r\n" % path)
        time.sleep(0.05)  # both requests wait in their sockets: one turn of the loop reads both
        for reader, writer in conns:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            writer.close()
    held, quick_one = measured["0"], measured["1"]
    assert held >= 0.3 and quick_one >= 0.25, measured
