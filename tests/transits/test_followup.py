"""The follow-up worker and retention, on a real server and Redis with a movable clock:
pending transits become one violation per plate, zone and day after the grace period unless a
permit arrives meanwhile; doubts go to review; stale-index transits are re-checked; records
and plates disappear when their retention ends; violations are exported by the API."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import logging
from typing import Any

import msgspec
import pytest
import redis

from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.transits.spool import all_frames
from loader.periods import with_spans

from ..support.api import ADMIN, CAMERA, NOW, stream
from ..support.common import eventually, permit, publish_permits
from ..support.followup import GRACE_S, World, ready_to_log


async def test_uncovered_after_grace_is_one_violation_per_plate_zone_day(world: World) -> None:
    first = await world.post("ZZ999ZZ", ts=(NOW - dt.timedelta(minutes=5)).isoformat())
    second = await world.post("ZZ999ZZ")
    other = await world.post("YY888YY")
    allowed = await world.post("AB123CD")
    assert allowed["verdict"] == "allowed"
    await world.run_followup()
    assert await world.violations() == []  # still within the grace period
    world.advance(GRACE_S)
    await world.run_followup()
    found = {v["plate"]: v for v in await world.violations()}
    assert set(found) == {"ZZ999ZZ", "YY888YY"}
    v = found["ZZ999ZZ"]
    assert v["transit_ids"] == sorted([first["transit_id"], second["transit_id"]])
    assert v["first_transit"] == first["transit_id"]  # the earlier capture, whatever the order
    assert (v["zone"], v["gate"], v["reason"]) == ("PEDONALE", "PD-03", "no_permit")
    assert v["day"] == NOW.astimezone(world.rules.clock.tz).date().isoformat()
    assert found["YY888YY"]["transit_ids"] == [other["transit_id"]]
    # At-least-once: deciding again (a redelivery, a second worker) changes nothing.
    for rec in stream(world.settings):
        if rec.plate == "ZZ999ZZ":
            await world.followup.violations.confirm(rec, "no_permit", 1)
    assert await world.violations() == list(found.values())


async def test_permit_registered_within_grace_discards(world: World) -> None:
    body = await world.post("GH789JK")
    assert body["verdict"] == "pending"
    await world.run_followup()
    world.advance(24 * 3600)
    # A hotel registers the guest's plate the next day, valid from before the transit.
    live = publish_permits(
        world.settings,
        world.rules,
        [permit("HOTEL-1", "GH789JK", "1", "2020-01-01T00:00:00+01:00")],
    )
    await eventually(lambda: _revision(world, live.revision))
    world.advance(GRACE_S)
    await world.run_followup()
    assert await world.violations() == []
    assert world.followup.counts["discarded"] == 1
    r = redis.Redis.from_url(world.settings.redis.url or "")
    assert r.hlen(Keys(world.settings.redis.prefix).followup_held) == 0
    r.close()


async def test_a_renewed_permit_registered_after_the_fact_covers_its_first_period(
    world: World,
) -> None:
    """The follow-up re-checks against every period: a permit registered during the grace
    period, already renewed, covers the transit by its first period."""
    body = await world.post("RW555RW")
    assert body["verdict"] == "pending"
    now = int(NOW.timestamp())
    first, second = (now - 86400, now + 3600), (now + 3600, now + 400 * 86400)
    renewed = with_spans(
        permit("RES-2", "RW555RW", "1", "2020-01-01T00:00:00+01:00"), [first, second]
    )
    live = publish_permits(world.settings, world.rules, [renewed])
    await eventually(lambda: _revision(world, live.revision))
    world.advance(GRACE_S)
    await world.run_followup()
    assert await world.violations() == []
    assert world.followup.counts["discarded"] == 1


async def test_a_correction_within_grace_is_what_the_follow_up_judges(world: World) -> None:
    """The camera corrects its read: the wrong plate, pending, would have been fined."""
    wrong = await world.post("ZZ999ZZ", event_id="axis-like-1")
    fixed = await world.post("AB123CD", event_id="axis-like-1")
    assert (wrong["verdict"], fixed["verdict"]) == ("pending", "allowed")
    world.advance(GRACE_S)
    await world.run_followup()
    assert await world.violations() == []
    assert world.followup.counts["corrected"] == 1


async def test_a_correction_after_confirmation_sends_the_violation_to_review(
    world: World,
) -> None:
    first = await world.post("ZZ999ZZ", event_id="late-fix-1")
    other = await world.post("ZZ999ZZ")  # the same plate, zone and day: the same violation
    world.advance(GRACE_S)
    await world.run_followup()
    [confirmed] = await world.violations()
    assert set(confirmed["transit_ids"]) == {first["transit_id"], other["transit_id"]}
    fixed = await world.post("AB123CD", event_id="late-fix-1")  # delayed in the camera
    assert (fixed["verdict"], fixed["transit_id"]) == ("allowed", first["transit_id"])
    await world.run_followup()
    assert await world.violations() == []  # a person decides, not the follow-up
    r = redis.Redis.from_url(world.settings.redis.url or "")
    items = [msgspec.json.decode(v) for v in r.hvals(Keys(world.settings.redis.prefix).review)]
    r.close()
    assert [
        (i["transit_id"], i["plate"], i["reason"], i["earlier"], sorted(i["withdrawn"]))
        for i in items
    ] == [
        (
            first["transit_id"],
            "AB123CD",
            "corrected_after_confirmation",
            ["ZZ999ZZ"],
            sorted([first["transit_id"], other["transit_id"]]),
        )
    ]


async def _revision(world: World, revision: int) -> bool:
    status, body, _ = await world.client.request("GET", "/readyz")
    return status == 200 and body["index_revision"] >= revision


async def test_doubts_go_to_review(world: World) -> None:
    await world.post("ZZ999ZZ", confidence=0.3)  # low confidence: never pending
    await world.run_followup()
    r = redis.Redis.from_url(world.settings.redis.url or "")
    items = [msgspec.json.decode(v) for v in r.hvals(Keys(world.settings.redis.prefix).review)]
    r.close()
    assert [(i["plate"], i["reason"]) for i in items] == [("ZZ999ZZ", "low_confidence")]


async def test_late_delivery_goes_to_review_never_to_a_fine(world: World) -> None:
    """A camera's backlog, four days late: the grace period has long passed, yet no fine."""
    late = (NOW - dt.timedelta(days=4)).isoformat()
    uncovered = await world.post("ZZ999ZZ", ts=late)
    covered = await world.post("AB123CD", ts=late)
    assert (uncovered["verdict"], uncovered["reason"]) == ("review", "late_delivery")
    assert (covered["verdict"], covered["reason"]) == ("allowed", "permit")
    world.advance(GRACE_S)
    await world.run_followup()
    assert await world.violations() == []
    r = redis.Redis.from_url(world.settings.redis.url or "")
    items = [msgspec.json.decode(v) for v in r.hvals(Keys(world.settings.redis.prefix).review)]
    r.close()
    assert [(i["plate"], i["reason"]) for i in items] == [("ZZ999ZZ", "late_delivery")]


async def test_stale_index_transit_is_rechecked_not_confirmed(world: World) -> None:
    live = world.api.holder.current
    assert live is not None
    live.overlay.mark_stale("test: changes missed", live.revision + 1)
    body = await world.post("ZZ999ZZ")
    assert (body["verdict"], body["reason"]) == ("review", "index_stale")
    world.advance(GRACE_S)
    await world.run_followup()
    assert await world.violations() == []  # the index is still stale: nothing decided
    assert world.followup.counts["deferred"] >= 1
    # A good index again: now it is decided, as of the transit instant.
    publish_permits(
        world.settings, world.rules, [permit("RES-9", "AA000AA", "1", "2020-01-01T00:00:00+01:00")]
    )
    await eventually(lambda: _fresh(world))
    await world.run_followup()
    assert [v["plate"] for v in await world.violations()] == ["ZZ999ZZ"]


async def _fresh(world: World) -> bool:
    live = world.api.holder.current
    return live is not None and live.overlay.stale is None


async def test_violations_api_pages_csv_and_errors(world: World) -> None:
    for i in range(5):
        await world.post(f"ZZ{i:03d}ZZ")
    world.advance(GRACE_S)
    await world.run_followup()
    c = world.client
    status, page1, _ = await c.request("GET", "/v1/violations", ADMIN, params={"limit": "3"})
    assert status == 200 and len(page1["violations"]) == 3 and page1["next_cursor"] == "3"
    status, page2, _ = await c.request(
        "GET", "/v1/violations", ADMIN, params={"limit": "3", "cursor": "3"}
    )
    assert len(page2["violations"]) == 2 and page2["next_cursor"] is None
    plates = {v["plate"] for v in page1["violations"] + page2["violations"]}
    assert plates == {f"ZZ{i:03d}ZZ" for i in range(5)}
    day = NOW.astimezone(world.rules.clock.tz).date()
    async with c.session.get(
        f"{c.base}/v1/violations", headers=ADMIN, params={"format": "csv", "from": day.isoformat()}
    ) as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await resp.text()), delimiter=";"))
    assert {row["plate"] for row in rows} == plates
    assert all(row["zone"] == "PEDONALE" and row["transit_ids"] for row in rows)
    tomorrow = (day + dt.timedelta(days=1)).isoformat()
    assert await world.violations(**{"from": tomorrow}) == []
    status, body, _ = await c.request("GET", "/v1/violations", CAMERA)
    assert status == 403
    for params, field in (
        ({"from": "yesterday"}, "from"),
        ({"limit": "0"}, "limit"),
        ({"format": "xml"}, "format"),
        ({"page": "2"}, "page"),
        ({"from": tomorrow, "to": day.isoformat()}, "to"),
    ):
        status, body, _ = await c.request("GET", "/v1/violations", ADMIN, params=params)
        assert (status, body["field"]) == (422, field), params


async def test_retention_removes_plates_from_redis_spool_and_logs(
    world: World, redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await world.post("AB123CD")  # allowed: kept 24 h
    await world.post("ZZ999ZZ")  # pending: becomes a violation, kept 450 days
    await world.run_followup()
    redis_server.kill()  # the next allowed transit goes to the spool, and stays there
    await world.post("AB123CD")
    assert [r.plate for r in _spooled(world)] == ["AB123CD"]
    world.advance(GRACE_S)  # > 24 h, Redis still away
    await world.api.intake.transit_log.prune_spool(world.settings.retention.allowed_s)  # type: ignore[union-attr]
    assert _spooled(world) == []
    redis_server.start()
    await eventually(lambda: ready_to_log(world.client))
    await world.run_followup()
    await world.followup.apply_retention()
    # What is remembered of an event (to tell a retry from a correction) holds its plate, and
    # Redis expires it no later than the record's retention; the test's clock is not Redis's,
    # so its expiry is checked, and the rest of Redis must hold the plate no longer.
    seen = Keys(world.settings.redis.prefix).transit_seen("")
    ttls = _ttls_holding(world, b"AB123CD", seen)
    assert ttls and all(0 < t <= world.settings.retention.allowed_s for t in ttls)
    dump = _redis_dump(world, skip=seen)
    assert b"AB123CD" not in dump
    assert b"ZZ999ZZ" in dump  # the violation is kept
    assert [v["plate"] for v in await world.violations()] == ["ZZ999ZZ"]
    world.advance(451 * 86400)
    await world.followup.apply_retention()
    assert b"ZZ999ZZ" not in _redis_dump(world, skip=seen)
    assert await world.violations() == []
    assert "AB123CD" not in caplog.text and "ZZ999ZZ" not in caplog.text


def _spooled(world: World) -> list[Any]:
    from enforcement.transits.record import DECODE_RECORD

    return [DECODE_RECORD(f) for f in all_frames(world.settings.storage.spool_dir)]


def _ttls_holding(world: World, plate: bytes, prefix: str) -> list[int]:
    """The seconds to live of the keys under `prefix` whose value holds `plate`."""
    r = redis.Redis.from_url(world.settings.redis.url or "")
    ttls = [r.ttl(k) for k in r.scan_iter(match=prefix + "*") if plate in (r.get(k) or b"")]
    r.close()
    return ttls


def _redis_dump(world: World, skip: str | None = None) -> bytes:
    """Every value of every key (but those under `skip`), as bytes: what a plate could hide
    in."""
    r = redis.Redis.from_url(world.settings.redis.url or "")
    out = []
    for key in r.scan_iter(count=1000):
        if skip is not None and key.startswith(skip.encode()):
            continue
        out.append(key)
        kind = r.type(key)
        if kind == b"string":
            out.append(r.get(key) or b"")
        elif kind == b"hash":
            out += [k + v for k, v in r.hgetall(key).items()]
        elif kind == b"zset":
            out += [m for m, _ in r.zrange(key, 0, -1, withscores=True)]
        elif kind == b"set":
            out += list(r.smembers(key))
        elif kind == b"stream":
            out += [b"".join(f.values()) for _, f in r.xrange(key)]
        elif kind == b"list":
            out += r.lrange(key, 0, -1)
    r.close()
    return b"\n".join(out)


async def test_cli_exports_violations(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from varco.cli import main

    from ..support.common import DEMO_CONFIG

    body = await world.post("ZZ999ZZ")
    world.advance(GRACE_S)
    await world.run_followup()
    monkeypatch.setenv("VARCO_DATA_DIR", str(world.settings.storage.data_dir))
    monkeypatch.setenv("REDIS_URL", world.settings.redis.url or "")
    day = NOW.astimezone(world.rules.clock.tz).date()
    until = (day + dt.timedelta(days=1)).isoformat()
    out = tmp_path / "violations.csv"
    args = ["--config", str(DEMO_CONFIG), "violations", "--from", day.isoformat(), "--to", until]
    assert await asyncio.to_thread(main, [*args, "--output", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text()), delimiter=";"))
    assert [(r["plate"], r["transit_ids"]) for r in rows] == [("ZZ999ZZ", body["transit_id"])]
    out_json = tmp_path / "violations.json"
    assert (
        await asyncio.to_thread(main, [*args, "--format", "json", "--output", str(out_json)]) == 0
    )
    items = msgspec.json.decode(out_json.read_bytes())
    assert [(v["plate"], v["zone"]) for v in items] == [("ZZ999ZZ", "PEDONALE")]
    with pytest.raises(SystemExit):
        main(["--config", str(DEMO_CONFIG), "violations", "--from", "soon", "--to", until])


async def test_a_day_replayed_with_after_the_fact_permits(world: World) -> None:
    """A day of transits at every gate; during the grace period some plates get permits
    (covering their transits, or not); the violations equal a naive model's."""
    import random

    from loader.store import PermitRow

    rng = random.Random(11)
    plates = [f"DY{i:03d}AA" for i in range(40)]
    gates = list(world.rules.gates)
    day_start = NOW.timestamp() - 20 * 3600
    sent = []  # (transit id, plate, gate, ts, verdict)
    for n in range(300):
        plate, gate = rng.choice(plates), rng.choice(gates)
        ts = day_start + rng.uniform(0, 20 * 3600)
        when = dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()
        body = await world.post(plate, gate=gate, ts=when, event_id=f"day-{n}")
        sent.append((body["transit_id"], plate, gate, ts, body["verdict"]))
    await world.run_followup()
    world.advance(24 * 3600)
    # After the fact: a third of the plates get a permit; half of those start too late.
    late: dict[str, float] = {}
    rows = []
    for i, plate in enumerate(rng.sample(plates, len(plates) // 3)):
        start = day_start - 3600 if i % 2 == 0 else day_start + 10 * 3600
        late[plate] = start
        rows.append(
            PermitRow(f"LATE-{i}", "1", int(start), None, (), "municipal", ((plate, True),))
        )
    live = publish_permits(world.settings, world.rules, rows)
    await eventually(lambda: _revision(world, live.revision))
    world.advance(GRACE_S)
    await world.run_followup()

    # The naive model: a transit pending at the gate is a violation unless a permit (type 1:
    # zone ZTL, which covers PEDONALE) started at or before it.
    expected: dict[tuple[str, str, str], set[str]] = {}
    for tid, plate, gate, ts, verdict in sent:
        if verdict != "pending":
            continue
        if plate in late and late[plate] <= ts:
            continue
        zone = world.rules.gates[gate].zone
        day = dt.datetime.fromtimestamp(ts, world.rules.clock.tz).date().isoformat()
        expected.setdefault((zone, day, plate), set()).add(tid)
    got = {
        (v["zone"], v["day"], v["plate"]): set(v["transit_ids"])
        for v in await world.violations(limit="5000")
    }
    assert got == expected
    assert any(v == "not_enforced" for *_, v in sent)  # gate schedules were exercised
    assert len(expected) > 10
