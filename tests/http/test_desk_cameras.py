"""Camera health (GET /v1/cameras/health and /metrics) after real posts; silence during the
gate's active hours only; summed across two replicas through Redis."""

from __future__ import annotations

import datetime as dt
import time

import aiohttp

from enforcement.http.app import create_app
from enforcement.http.service import SERVICE
from enforcement.keys import Keys

from ..support.api import CAMERA, POLICE, Client, ServiceServer, transit
from ..support.common import eventually
from ..support.desk import OPERATOR, SCHEDULED_CAMERA
from ..support.followup import World, ready_to_log


async def _health(client: Client) -> dict[str, dict[str, object]]:
    status, body, _ = await client.request("GET", "/v1/cameras/health", OPERATOR)
    assert status == 200, body
    return {c["camera"]: c for c in body["cameras"]}


async def test_figures_per_camera_and_in_metrics(desk: World) -> None:
    behind = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat()
    for plate in ("AB123CD", "ZZ999ZZ", "unknown"):
        await desk.post(plate, ts=behind)
    await desk.post("AB123CD", camera="cam-2")
    cams = await _health(desk.client)
    one = cams["cam-1"]
    assert (one["gate"], one["reads_last_hour"], one["unreadable_last_hour"]) == ("PD-03", 3, 1)
    assert one["unreadable_share"] == 1 / 3
    assert 29 <= one["clock_offset_s"] <= 45  # type: ignore[operator]
    last = dt.datetime.fromisoformat(one["last_read_at"])  # type: ignore[arg-type]
    assert time.time() - last.timestamp() < 30
    assert (one["silent"], one["alarm"]) == (False, None)
    assert cams["cam-2"]["reads_last_hour"] == 1
    # Registered cameras are listed before their first read.
    assert cams["cam-rekor"]["reads_last_hour"] == 0
    assert cams["cam-rekor"]["last_read_at"] is None
    _, metrics, _ = await desk.client.request("GET", "/metrics")
    assert 'varco_camera_reads_total{camera="cam-1"} 3' in metrics
    assert 'varco_camera_unreadable_total{camera="cam-1"} 1' in metrics
    assert 'varco_camera_clock_offset_seconds{camera="cam-2"} ' in metrics
    assert 'varco_camera_silent{camera="cam-1"} 0' in metrics
    assert "AB123CD" not in metrics and "ZZ999ZZ" not in metrics
    for headers, code in ((POLICE, 403), (CAMERA, 403), ({}, 401)):
        status, _, _ = await desk.client.request("GET", "/v1/cameras/health", headers)
        assert status == code


async def test_a_silent_camera_alarms_only_while_its_gate_is_active(desk: World) -> None:
    health = desk.api.health
    # Captured now, not at the suite's start (support.api.NOW): a read minutes old would set
    # off the camera's clock-offset alarm, which is not what this test is about.
    await desk.post("AB123CD", ts=dt.datetime.now(dt.UTC).isoformat())
    health.started = time.time() - 3600  # this service has been listening for an hour
    cams = await _health(desk.client)
    assert (cams["cam-rekor"]["silent"], cams["cam-rekor"]["alarm"]) == (True, "silent")
    assert (cams["cam-1"]["silent"], cams["cam-1"]["alarm"]) == (False, None)
    _, metrics, _ = await desk.client.request("GET", "/metrics")
    assert 'varco_camera_silent{camera="cam-rekor"} 1' in metrics
    # PD-01 runs Mon-Sat 08:00-20:00: on a Monday at 10:00 its silent camera alarms, on a
    # Sunday, or at night, it does not.
    for local, silent in (
        ("2026-11-23T10:00:00", True),
        ("2026-11-22T10:00:00", False),
        ("2026-11-23T22:00:00", False),
    ):
        at = float(desk.rules.clock.from_local(dt.datetime.fromisoformat(local)))
        health.clock, health.started = (lambda at=at: at), at - 3600
        cams = await _health(desk.client)
        assert cams[SCHEDULED_CAMERA]["silent"] is silent, local
        assert cams[SCHEDULED_CAMERA]["gate"] == "PD-01"


async def test_two_replicas_are_summed_through_redis(desk: World) -> None:
    """A second replica on the same Redis: each counts its own posts, either one's view sums
    both (its own exactly; the other's as of its last flush)."""
    other = ServiceServer(
        create_app(desk.settings, desk.rules, transit_redis_url=desk.settings.redis.url)
    )
    await other.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, str(other.make_url("")).rstrip("/"))
            await eventually(lambda: ready_to_log(client))
            for _ in range(2):
                status, _, _ = await client.request(
                    "POST", "/v1/transits", CAMERA, json=transit("AB123CD")
                )
                assert status == 200
            await desk.post("AB123CD")
            replica = other.app[SERVICE]
            await replica.health.flush(replica.desk_redis, Keys(desk.settings.redis.prefix))
            cams = await _health(desk.client)
            assert cams["cam-1"]["reads_last_hour"] == 3
    finally:
        await other.close()
