"""A service that records nothing (`create_app(record=False)`, what bench kind "check"
measures) answers native posts' common cases through the C Judge (core/judge.py): the same
bodies the Checker's path gives, the verdicts counted in /metrics and the reads in camera
health as `Intake.accept` counts them."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest

from enforcement.config.settings import Settings, with_changes
from enforcement.core.plates import normalise
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.http.schemas import ENCODER
from enforcement.http.service import SERVICE, Service
from enforcement.keys import Keys

from ..support.api import CAMERA, PERMITS, Client, ServiceServer, transit, wait_ready
from ..support.common import publish_permits


@pytest.fixture
async def judging(demo: tuple[Settings, Rules]) -> AsyncIterator[tuple[Client, Service]]:
    settings, rules = demo
    settings = with_changes(settings, server={"snapshot_poll_s": 0.05})
    publish_permits(settings, rules, PERMITS)
    app = create_app(settings, rules, record=False)
    server = ServiceServer(app)
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        client = Client(session, str(server.make_url("")).rstrip("/"))
        await wait_ready(client)
        yield client, app[SERVICE]
    await server.close()


async def _post(client: Client, body: dict[str, Any]) -> bytes:
    async with client.session.post(client.base + "/v1/transits", json=body, headers=CAMERA) as r:
        assert r.status == 200, await r.text()
        return await r.read()


async def test_answers_equal_the_checkers_and_are_counted(
    judging: tuple[Client, Service],
) -> None:
    client, service = judging
    judged = []
    ts = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=1)
    posts = [
        transit("AB123CD", ts=ts.isoformat()),  # allowed: natively
        transit("ab123cd", ts=ts.isoformat()),  # allowed: natively (upper-cased)
        transit("ZZ999ZZ", ts=ts.isoformat()),  # pending: natively
        transit("AB123CO", ts=ts.isoformat()),  # near_match: the Checker's path
        transit("AB 123 CD", ts=ts.isoformat()),  # needs normalising: the Checker's path
        transit("ZZ999ZZ", ts=ts.isoformat(), confidence=0.1),  # low_confidence
        transit("", ts=ts.isoformat()),  # unreadable
    ]
    for body in posts:
        judged.append(await _post(client, body))
    live, checker = service.holder.live(), service.checker
    judge = service.intake._judge
    if judge is None:
        pytest.skip("C kernel not built")
    for body, answer in zip(posts, judged, strict=True):
        t = dt.datetime.fromisoformat(body["ts"]).timestamp()
        expected = checker.check(
            live,
            normalise(body["plate"]),
            t,
            service.rules.gates[body["gate"]],
            body["confidence"],
            t + 60,
            body["event_id"],
        )
        assert answer == ENCODER.encode(expected), body
    verdicts = [msgspec.json.decode(a)["reason"] for a in judged]
    assert verdicts == [
        "permit",
        "permit",
        "no_permit",
        "near_match",
        "permit",
        "low_confidence",
        "unreadable",
    ]
    status, metrics, _ = await client.request("GET", "/metrics")
    assert status == 200
    assert 'varco_transits_total{verdict="allowed",reason="permit"} 3' in metrics
    assert 'varco_transits_total{verdict="pending",reason="no_permit"} 1' in metrics
    assert 'varco_transits_total{verdict="review",reason="near_match"} 1' in metrics
    # Every read counted for its camera, the unreadable one as such, by either path.
    await service.health.flush(None, Keys(service.settings.redis.prefix))
    assert service.health.totals["cam-1"][:2] == [7, 1]
    # The common three were the Judge's (it answers them), the others the Checker's.
    native = [
        judge.native(p["plate"], ts.timestamp(), p["gate"], p["confidence"], time.time(), "e")
        for p in posts
    ]
    assert [n is not None for n in native] == [True] * 3 + [False] * 4
