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
from enforcement.http.admission import Admission, Overloaded
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
