"""The review queue at the desk (GET /v1/review, POST /v1/review/{id}) on a real server and
Redis, with the follow-up filling the queue as it does in service."""

from __future__ import annotations

import datetime as dt

import pytest
import redis

from enforcement.keys import Keys
from enforcement.transits.review import Changed

from ..support.api import ADMIN, CAMERA, NOW, POLICE
from ..support.common import eventually, permit, publish_permits
from ..support.desk import OPERATOR, audit_records, decide, queued, review
from ..support.followup import GRACE_S, World


def _ts(minutes_before: int) -> str:
    return (NOW - dt.timedelta(minutes=minutes_before)).isoformat()


async def test_list_filters_and_pages(desk: World) -> None:
    made = [
        await queued(desk, "ZZ001AA", ts=_ts(50)),
        await queued(desk, "ZZ002AA", ts=_ts(40), camera="cam-2"),
        await queued(desk, "unknown", ts=_ts(30), confidence=0.9),  # unreadable
        await queued(desk, "ZZ004AA", ts=_ts(20)),
        await queued(desk, "ZZ005AA", ts=_ts(10)),
    ]
    ids = [m["transit_id"] for m in made]
    page = await review(desk.client)
    assert [i["transit_id"] for i in page["items"]] == ids  # oldest first
    assert page["next_cursor"] is None
    first = page["items"][0]
    assert (first["plate"], first["raw_plate"], first["confidence"], first["reason"]) == (
        "ZZ001AA",
        "ZZ001AA",
        0.3,
        "low_confidence",
    )
    assert (first["camera"], first["gate"], first["zone"]) == ("cam-1", "PD-03", "PEDONALE")
    assert (first["alternatives"], first["evidence"], first["kept"]) == ([], None, None)
    assert dt.datetime.fromisoformat(first["at"]) == NOW - dt.timedelta(minutes=50)

    def got(body: dict[str, object]) -> list[str]:
        return [i["transit_id"] for i in body["items"]]  # type: ignore[attr-defined]

    assert got(await review(desk.client, reason="unreadable")) == [ids[2]]
    assert got(await review(desk.client, camera="cam-2")) == [ids[1]]
    assert got(await review(desk.client, gate="PD-03")) == ids
    assert got(await review(desk.client, since=_ts(35), until=_ts(15))) == ids[2:4]
    # Pages of two, each from the cursor of the one before: every item once, in order.
    seen, cursor = [], None
    for _ in range(5):
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        body = await review(desk.client, **query)
        seen += got(body)
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    # A filtered page: the cursor goes on past items the filter skips.
    body = await review(desk.client, limit="1", reason="low_confidence")
    assert got(body) == [ids[0]]
    body = await review(desk.client, limit="3", reason="low_confidence", cursor=body["next_cursor"])
    assert got(body) == [ids[1], ids[3], ids[4]]
    # Who may look, and what is refused.
    assert got(await review(desk.client, ADMIN)) == ids
    for headers, status in ((POLICE, 403), (CAMERA, 403), ({}, 401)):
        code, _, _ = await desk.client.request("GET", "/v1/review", headers)
        assert code == status
    for query, field in (
        ({"gate": "PD-99"}, "gate"),
        ({"limit": "0"}, "limit"),
        ({"cursor": "nonsense"}, "cursor"),
        ({"since": "yesterday"}, "since"),
        ({"colour": "red"}, "colour"),
    ):
        code, body, _ = await desk.client.request("GET", "/v1/review", OPERATOR, params=query)
        assert (code, body["field"]) == (422, field)


async def test_confirm_makes_one_violation_per_plate_zone_and_day(desk: World) -> None:
    first = await queued(desk, "ZZ999ZZ", ts=_ts(20))
    second = await queued(desk, "ZZ999ZZ", ts=_ts(10))
    status, out = await decide(desk.client, first["transit_id"], "confirm")
    assert status == 200, out
    v = out["violation"]
    assert (v["plate"], v["zone"], v["reason"], v["transit_ids"]) == (
        "ZZ999ZZ",
        "PEDONALE",
        "no_permit",
        [first["transit_id"]],
    )
    assert (out["decision"], out["verdict"], out["decided_by"]) == (
        "confirm",
        None,
        "demo-operator",
    )
    status, out = await decide(desk.client, second["transit_id"], "confirm", headers=ADMIN)
    assert status == 200, out
    assert out["violation"]["transit_ids"] == sorted([first["transit_id"], second["transit_id"]])
    assert out["violation"]["first_transit"] == first["transit_id"]
    [violation] = await desk.violations()  # one violation, not two
    status, listed, _ = await desk.client.request("GET", "/v1/violations", OPERATOR)
    assert (status, len(listed["violations"])) == (200, 1)  # the desk sees violations too
    status, _, _ = await desk.client.request("GET", "/v1/violations", POLICE)
    assert status == 403
    assert violation["transit_ids"] == out["violation"]["transit_ids"]
    # Decided items leave the queue; deciding one again is 409, and changes nothing.
    assert (await review(desk.client))["items"] == []
    status, out = await decide(desk.client, first["transit_id"], "dismiss")
    assert (status, out["error"], out["field"]) == (409, "conflict", "transit_id")
    assert "confirm by demo-operator" in out["detail"]
    assert len(await desk.violations()) == 1
    records = [r for r in audit_records(desk.settings) if r.get("action") == "review_decision"]
    assert [(r["key_id"], r["role"], r["target"], r["detail"]["decision"]) for r in records] == [
        ("demo-operator", "operator", first["transit_id"], "confirm"),
        ("demo-admin", "admin", second["transit_id"], "confirm"),
    ]
    assert records[0]["reason"] == "verbale 7/2026"
    assert records[0]["detail"]["violation"].startswith("PEDONALE|")


async def test_confirm_is_refused_for_a_covered_plate_or_an_unreadable_read(desk: World) -> None:
    unreadable = await queued(desk, "unknown", confidence=0.9)
    status, out = await decide(desk.client, unreadable["transit_id"], "confirm")
    assert (status, out["field"]) == (422, "plate")
    late = await queued(desk, "RW777RW")
    # A permit registered after the fact now covers it: no fine, a person dismisses it.
    live = publish_permits(
        desk.settings, desk.rules, [permit("HOTEL-1", "RW777RW", "1", "2020-01-01T00:00:00+01:00")]
    )

    async def current() -> bool:
        status, body, _ = await desk.client.request("GET", "/readyz")
        return status == 200 and body["index_revision"] >= live.revision

    await eventually(current)
    status, out = await decide(desk.client, late["transit_id"], "confirm")
    assert (status, out["field"]) == (422, "decision")
    assert "HOTEL-1" in out["detail"]
    assert await desk.violations() == []
    # Nothing was decided: both still queued.
    assert len((await review(desk.client))["items"]) == 2


async def test_dismiss_needs_a_reason_and_happens_once(desk: World) -> None:
    item = await queued(desk, "ZZ123ZZ")
    tid = item["transit_id"]
    for body_reason, field in ((None, "reason"), ("", "reason"), ("a\nb", "reason")):
        status, out = await decide(desk.client, tid, "dismiss", reason=body_reason)
        assert (status, out["field"]) == (422, field), out
    status, out = await decide(desk.client, tid, "archive")
    assert (status, out["field"]) == (422, "decision")
    status, out = await decide(desk.client, tid, "dismiss", plate="AB123CD")
    assert (status, out["field"]) == (422, "plate")
    status, out = await decide(desk.client, tid, "dismiss", headers=POLICE)
    assert status == 403
    status, out = await decide(desk.client, "0" * 24, "dismiss")
    assert status == 404
    assert [r for r in audit_records(desk.settings) if r.get("action")] == []  # none taken
    status, out = await decide(desk.client, tid, "dismiss", reason="targa di prova")
    assert status == 200, out
    assert (out["violation"], out["verdict"]) == (None, None)
    status, out = await decide(desk.client, tid, "dismiss")
    assert status == 409
    assert (await review(desk.client))["items"] == []
    [record] = [r for r in audit_records(desk.settings) if r.get("action")]
    assert (record["target"], record["reason"], record["detail"]) == (
        tid,
        "targa di prova",
        {"decision": "dismiss"},
    )
    desk.advance(GRACE_S)
    await desk.run_followup()
    assert await desk.violations() == []


async def test_a_corrected_plate_is_judged_again(desk: World) -> None:
    unreadable = await queued(desk, "unknown", confidence=0.9)
    status, out = await decide(desk.client, unreadable["transit_id"], "correct", plate="ab 123 cd")
    assert status == 200, out
    assert (out["verdict"]["verdict"], out["verdict"]["plate"]) == ("allowed", "AB123CD")
    assert out["verdict"]["permits"] == ["RES-1"]
    assert out["verdict"]["transit_id"] == unreadable["transit_id"]
    assert (await review(desk.client))["items"] == []
    status, out = await decide(desk.client, unreadable["transit_id"], "correct", plate="AB123CD")
    assert status == 409
    # A misread corrected to a plate without a permit: pending, then a violation after grace.
    misread = await queued(desk, "ZZ888")
    status, out = await decide(desk.client, misread["transit_id"], "correct", plate="ZZ888ZZ")
    assert (status, out["verdict"]["verdict"]) == (200, "pending"), out
    status, out = await decide(desk.client, misread["transit_id"], "confirm")
    assert status == 409
    await desk.run_followup()
    assert await desk.violations() == []  # its grace period first
    desk.advance(GRACE_S)
    await desk.run_followup()
    [v] = await desk.violations()
    assert (v["plate"], v["transit_ids"]) == ("ZZ888ZZ", [misread["transit_id"]])
    records = [r for r in audit_records(desk.settings) if r.get("action") == "review_decision"]
    assert [r["detail"] for r in records] == [
        {"decision": "correct", "plate": "AB123CD"},
        {"decision": "correct", "plate": "ZZ888ZZ"},
    ]
    status, out = await decide(desk.client, misread["transit_id"], "correct")
    assert (status, out["field"]) == (422, "plate")  # a correction names the plate


async def test_a_correction_still_in_doubt_stays_queued_with_the_new_read(desk: World) -> None:
    """A late delivery stays a doubt whatever the plate: corrected, it is queued again (with
    the new read and the read it replaced), and decided afterwards."""
    late = await queued(desk, "ZZ777ZZ", ts=_ts(7 * 60), confidence=0.9)
    [item] = (await review(desk.client))["items"]
    assert item["reason"] == "late_delivery"
    status, out = await decide(desk.client, late["transit_id"], "correct", plate="ZZ777ZY")
    assert status == 200, out
    assert (out["verdict"]["verdict"], out["verdict"]["reason"]) == ("review", "late_delivery")
    [again] = (await review(desk.client))["items"]
    assert (again["transit_id"], again["plate"], again["earlier"]) == (
        late["transit_id"],
        "ZZ777ZY",
        ["ZZ777ZZ"],
    )
    await desk.run_followup()  # the follow-up takes the correction as it stands
    [again] = (await review(desk.client))["items"]
    assert again["plate"] == "ZZ777ZY"
    status, out = await decide(desk.client, late["transit_id"], "confirm")
    assert (status, out["violation"]["plate"]) == (200, "ZZ777ZY"), out
    assert (await review(desk.client))["items"] == []


async def test_a_decision_on_an_item_that_changed_meanwhile_is_refused(desk: World) -> None:
    """Read, then a corrected read replaces the item before the decision lands: 409, and the
    new read is still queued, undecided."""
    item = await queued(desk, "ZZ666ZZ", event_id="changing-1")
    queue = desk.api.review
    assert queue is not None
    plan = await queue.prepare(item["transit_id"], "dismiss", "doppione", None)
    await queued(desk, "ZZ666ZY", event_id="changing-1")  # the camera's own correction
    with pytest.raises(Changed):
        await queue.apply(plan, "demo-operator", None)
    [still] = (await review(desk.client))["items"]
    assert (still["plate"], still["earlier"]) == ("ZZ666ZY", ["ZZ666ZZ"])


async def test_decisions_expire_with_the_violations_retention(desk: World) -> None:
    item = await queued(desk, "ZZ555ZZ")
    status, _ = await decide(desk.client, item["transit_id"], "dismiss")
    assert status == 200
    keys = Keys(desk.settings.redis.prefix)
    r = redis.Redis.from_url(desk.settings.redis.url or "")
    try:
        assert r.hlen(keys.review_decided) == 1
        desk.advance(desk.settings.retention.violations_s + 60)
        await desk.followup.apply_retention()
        assert (r.hlen(keys.review_decided), r.zcard(keys.review_decided_index)) == (0, 0)
    finally:
        r.close()
    status, _ = await decide(desk.client, item["transit_id"], "dismiss")
    assert status == 404  # forgotten with the rest of it
