"""Admission control and per-key rate limits (enforcement/http/admission.py, ratelimit.py),
through the service's own runner on loopback.

Slow handling is real: Redis is told to hold every write (CLIENT PAUSE WRITE), so each
admitted transit keeps its slot while its group commit waits, as it would on a slow Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import time
from typing import Any

import pytest
import redis
from aiohttp import web

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.admission import BACKOFF, Admission, Overloaded
from enforcement.http.app import create_app
from enforcement.http.service import SERVICE
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.api import PERMITS, POLICE, Client, serving, transit
from ..support.cameras import AT, VENDORS
from ..support.common import publish_permits

SLOTS = 4


def shed_counts(metrics: str) -> dict[str, int]:
    return {
        m[1]: int(m[2])
        for m in re.finditer(r'^varco_http_shed_total\{reason="(\w+)"\} (\d+)$', metrics, re.M)
    }


async def post(client: Client, plate: str, **extra: Any) -> tuple[int, Any, dict[str, str]]:
    body = transit(plate, **extra)
    status, reply, r = await client.request("POST", "/v1/transits", extra_key(extra), json=body)
    if status == 200:  # each admitted answer is for its own transit
        assert (reply["event_id"], reply["plate"]) == (body["event_id"], plate), reply
    return status, reply, dict(r.headers)


def extra_key(extra: dict[str, Any]) -> dict[str, str]:
    native = extra.get("camera") == "cam-native"
    return {"Authorization": f"Bearer demo-{'native' if native else 'camera'}"}


async def slots_held(app: web.Application, n: int, timeout_s: float = 10) -> None:
    """Until `n` requests hold admission slots (Redis paused: they wait for their commit).
    Polled rather than slept for: on a loaded host the requests take their time to arrive."""
    admission = app[SERVICE].admission
    deadline = time.monotonic() + timeout_s
    while admission.in_flight < n:
        assert time.monotonic() < deadline, admission.in_flight
        await asyncio.sleep(0.01)


async def test_a_flood_past_the_slots_is_shed_with_retry_after_and_the_admitted_are_right(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> None:
    settings, rules = demo
    settings = with_changes(
        settings,
        server={
            "snapshot_poll_s": 0.05,
            "max_in_flight": SLOTS,
            "max_queue_wait_s": 0.05,
            "retry_after_s": 2,
        },
        transit_log={"write_timeout_s": 5.0},  # a paused Redis is waited for, not spooled
    )
    publish_permits(settings, rules, PERMITS)
    app = create_app(settings, rules, transit_redis_url=redis_server.url)
    async with serving(app) as (_, client):
        assert (await post(client, "AB123CD"))[0] == 200  # the transit log is connected
        r = redis.Redis.from_url(redis_server.url)
        r.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")  # until UNPAUSE below
        plates = [f"AC{i:03d}DE" for i in range(40)]
        flood = asyncio.gather(*(post(client, p) for p in plates))
        await slots_held(app, SLOTS)  # the flood is in: every slot held, the rest shed
        t0 = time.perf_counter()
        health = await client.request("GET", "/healthz")
        ready = await client.request("GET", "/readyz")
        metrics = await client.request("GET", "/metrics")
        assert time.perf_counter() - t0 < 0.5  # answered while the slots are held
        assert health[0] == 200 and ready[0] == 200 and metrics[0] == 200
        assert f"varco_http_in_flight {SLOTS}" in metrics[1]

        r.execute_command("CLIENT", "UNPAUSE")
        results = await flood
        ok = [res for res in results if res[0] == 200]
        shed = [res for res in results if res[0] == 503]
        assert len(ok) == SLOTS and len(shed) == len(plates) - SLOTS
        for _, body, headers in shed:
            assert body["error"] == "overloaded" and "max_in_flight" in body["detail"]
            assert headers["Retry-After"] == "2"
        counts = shed_counts((await client.request("GET", "/metrics"))[1])
        assert sum(counts.values()) == len(shed) and counts["in_flight"] > 0

        # Redis writes again: the slots are free, transits are admitted again.
        results = await asyncio.gather(*(post(client, p) for p in plates[:SLOTS]))
        assert [res[0] for res in results] == [200] * SLOTS
        r.close()


async def test_a_request_whose_body_comes_in_parts_waits_for_a_slot_in_order(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> None:
    """A request the connection cannot refuse whole (its body in parts, as a large camera
    post arrives) waits in the queue for a freed slot, within max_queue_wait; one arriving
    whole while every slot is held is refused at once."""
    settings, rules = demo
    settings = with_changes(
        settings,
        server={"snapshot_poll_s": 0.05, "max_in_flight": 2, "max_queue_wait_s": 2.0},
        transit_log={"write_timeout_s": 5.0},
    )
    publish_permits(settings, rules, PERMITS)
    app = create_app(settings, rules, transit_redis_url=redis_server.url)
    async with serving(app) as (server, client):
        assert (await post(client, "AB123CD"))[0] == 200
        r = redis.Redis.from_url(redis_server.url)
        # Redis holds writes until told (not for a fixed time: on a loaded host the steps
        # below may take longer than any pause chosen).
        r.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")
        held = asyncio.gather(post(client, "AC001DE"), post(client, "AC002DE"))
        await slots_held(app, 2)  # both slots held until Redis writes again
        refused = await post(client, "AC003DE")
        assert refused[0] == 503 and refused[2]["Retry-After"] == "1"

        body = json.dumps(transit("AC004DE")).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /v1/transits HTTP/1.1\r\nHost: varco\r\nAuthorization: Bearer demo-camera"
            b"\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body[:10]
        )
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body[10:])
        t0 = time.perf_counter()
        await asyncio.sleep(0.3)  # queued for a slot meanwhile
        r.execute_command("CLIENT", "UNPAUSE")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        waited = time.perf_counter() - t0
        writer.close()
        assert head.startswith(b"HTTP/1.1 200"), head  # admitted once a slot was freed
        assert 0.1 < waited < 2.0  # it waited for Redis, not for the whole queue bound
        assert [res[0] for res in await held] == [200, 200]
        counts = shed_counts((await client.request("GET", "/metrics"))[1])
        assert counts["in_flight"] == 1 and counts["queue_timeout"] == 0
        r.close()


async def test_refused_at_the_connection_the_connection_stays_usable_and_framed(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> None:
    """Requests refused before they are parsed: each gets its own 503 on a kept connection,
    whose next request (health) is answered as usual; `Connection: close` is honoured."""
    settings, rules = demo
    settings = with_changes(
        settings,
        server={"snapshot_poll_s": 0.05, "max_in_flight": 1, "retry_after_s": 3},
        transit_log={"write_timeout_s": 5.0},
    )
    publish_permits(settings, rules, PERMITS)
    app = create_app(settings, rules, transit_redis_url=redis_server.url)
    async with serving(app) as (server, client):
        assert (await post(client, "AB123CD"))[0] == 200
        r = redis.Redis.from_url(redis_server.url)
        r.execute_command("CLIENT", "PAUSE", 30_000, "WRITE")  # until UNPAUSE below
        held = asyncio.ensure_future(post(client, "AC001DE"))
        await slots_held(app, 1)  # the one slot held

        def raw(plate: str, extra: bytes = b"") -> bytes:
            body = json.dumps(transit(plate)).encode()
            return (
                b"POST /v1/transits HTTP/1.1\r\nHost: varco\r\nAuthorization: Bearer demo-"
                b"camera\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
                % (extra, len(body))
                + body
            )

        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        answers = []
        for request in (
            raw("AC002DE"),
            raw("AC003DE"),
            b"GET /healthz HTTP/1.1\r\nHost: v\r\n\r\n",
        ):
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(re.search(rb"(?i)content-length: (\d+)", head)[1])  # type: ignore[index]
            answers.append((head, json.loads(await reader.readexactly(length))))
        for head, body in answers[:2]:
            assert head.startswith(b"HTTP/1.1 503") and b"Retry-After: 3\r\n" in head
            assert body["error"] == "overloaded"
        assert answers[2][0].startswith(b"HTTP/1.1 200") and answers[2][1]["status"] == "ok"

        writer.write(raw("AC004DE", b"Connection: close\r\n"))
        rest = await asyncio.wait_for(reader.read(), 5)  # answered, then closed
        assert rest.startswith(b"HTTP/1.1 503") and b"Connection: close" in rest
        writer.close()
        r.execute_command("CLIENT", "UNPAUSE")
        assert (await held)[0] == 200
        counts = shed_counts((await client.request("GET", "/metrics"))[1])
        assert counts["in_flight"] == 3
        r.close()


async def test_a_key_past_its_rate_gets_429_and_recovers_after_the_refill(
    demo: tuple[Settings, Rules],
) -> None:
    settings, rules = demo
    settings = with_changes(
        settings, server={"snapshot_poll_s": 0.05, "key_rate": 2.0, "key_burst": 3}
    )
    publish_permits(settings, rules, PERMITS)
    native = {"camera": "cam-native", "gate": "PD-03"}
    async with serving(create_app(settings, rules)) as (_, client):
        statuses = [(await post(client, "AB123CD", **native))[0] for _ in range(3)]
        assert statuses == [200, 200, 200]  # the burst
        status, body, headers = await post(client, "AB123CD", **native)
        assert status == 429 and body["error"] == "rate_limited", body
        assert "server.key_rate" in body["detail"] and "'cam-native'" in body["detail"]
        assert headers["Retry-After"] == "1"  # one request refills in 0.5 s
        # Another key, and a camera posting by its URL token, have buckets of their own.
        assert (await client.request("GET", "/v1/plates/AB123CD?reason=test", POLICE))[0] == 200
        milesight = next(v for v in VENDORS if v.name == "milesight")
        path = "/v1/cameras/milesight/demo-milesight-token"
        vendor = []
        for i in range(4):
            data, ct = milesight.body("AB123CD", AT + dt.timedelta(seconds=i), 0.9)
            vendor.append((await client.request("POST", path, ct, data=data))[0])
        assert vendor == [200, 200, 200, 429]

        await asyncio.sleep(0.6)  # one token back
        assert (await post(client, "AB123CD", **native))[0] == 200
        assert (await post(client, "AB123CD", **native))[0] == 429

        metrics = (await client.request("GET", "/metrics"))[1]
        assert 'varco_rate_limited_total{key="cam-native"} 2' in metrics
        assert 'varco_rate_limited_total{key="cam-milesight"} 1' in metrics
        for secret in ("demo-native", "demo-milesight-token"):  # ids, never keys or tokens
            assert secret not in metrics


async def test_a_freed_slot_goes_to_the_oldest_waiter_and_a_timed_out_one_is_shed(
    demo: tuple[Settings, Rules],
) -> None:
    limits = with_changes(demo[0], server={"max_in_flight": 2, "max_queue_wait_s": 0.2}).server
    admission = Admission(limits)
    assert admission.enter() and admission.enter() and not admission.enter()
    order: list[str] = []

    async def waiter(name: str) -> None:
        await admission.wait()
        order.append(name)
        await asyncio.sleep(0.01)
        admission.leave()

    first = asyncio.ensure_future(waiter("first"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(waiter("second"))
    await asyncio.sleep(0)
    assert admission.queued == 2
    with pytest.raises(Overloaded):  # the queue is as long as the slots: no third
        await admission.wait()
    assert admission.shed["queue_full"] == 1
    admission.leave()  # the slot passes to "first", then from it to "second"
    await asyncio.gather(first, second)
    assert order == ["first", "second"] and admission.in_flight == 1

    with pytest.raises(Overloaded):  # both slots held (one by this test): a waiter times out
        assert admission.enter()
        await admission.wait()
    assert admission.shed["queue_timeout"] == 1 and admission.queued == 0
    admission.leave()
    admission.leave()
    assert admission.in_flight == 0


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
    complete(fast=16, late=2)  # 2 of 18 late: the p90 is over the target
    admission.adapt()
    cut = int(18 * BACKOFF)
    assert admission.limit == cut and admission.cuts == 1
    # Requests admitted before the cut, late, do not cut it again
    before = time.perf_counter() - 0.05
    for _ in range(5):
        assert admission.enter()
        admission.done(before)
    admission.adapt()
    assert admission.limit == cut
    for _ in range(10):  # never below the floor
        complete(fast=0, late=5)
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
        metrics = (await client.request("GET", "/metrics"))[1]
        found = re.search(r"^varco_http_in_flight_limit (\d+)$", metrics, re.M)
        assert found is not None
        ready = (await client.request("GET", "/readyz"))[1]
        assert ready["admission"]["in_flight_limit"] == int(found[1])
        return int(found[1])

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
            await flood(client, 24)
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

    def noting(started: float) -> None:  # what the limit is told, then the limit itself
        measured[str(len(measured))] = time.perf_counter() - started
        done(started)

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
