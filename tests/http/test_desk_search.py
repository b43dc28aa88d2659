"""Transit search (GET /v1/transits/search) on a real server and Redis: by plate and day, by
gate and window; a reason, retention and the window's bound enforced; audited."""

from __future__ import annotations

import datetime as dt

from ..support.api import CAMERA, NOW, POLICE
from ..support.desk import OPERATOR, REASON, audit_records, search
from ..support.followup import World


async def test_by_plate_and_day(desk: World) -> None:
    mine = [await desk.post("AB123CD"), await desk.post("ZZ999ZZ"), await desk.post("AB123CD")]
    today = desk.rules.clock.to_datetime(NOW.timestamp()).date()
    status, body = await search(desk.client, plate="ab123cd", day=today.isoformat())
    assert status == 200, body
    got = body["transits"]
    # by capture instant, then transit id (these two share the instant)
    assert [t["transit_id"] for t in got] == sorted([mine[0]["transit_id"], mine[2]["transit_id"]])
    assert {(t["plate"], t["verdict"], t["gate"], t["camera"]) for t in got} == {
        ("AB123CD", "allowed", "PD-03", "cam-1")
    }
    assert dt.datetime.fromisoformat(got[0]["at"]) == NOW
    assert body["truncated"] is False
    status, body = await search(desk.client, plate="AB123CD", day=today.isoformat(), limit="1")
    assert (len(body["transits"]), body["truncated"]) == (1, True)
    # Another day: nothing (the day's bounds are local midnights).
    tomorrow = (today + dt.timedelta(days=1)).isoformat()
    status, body = await search(desk.client, plate="AB123CD", day=tomorrow)
    assert (status, body["transits"]) == (200, [])
    [first, limited, other_day] = [
        r for r in audit_records(desk.settings) if r.get("action") == "transit_search"
    ]
    assert (first["key_id"], first["role"], first["plate"], first["results"]) == (
        "demo-operator",
        "operator",
        "AB123CD",
        2,
    )
    assert (first["reason"], first["detail"]) == ("ricorso 12/2026", {"day": today.isoformat()})
    assert (limited["results"], other_day["results"]) == (1, 0)


async def test_by_gate_and_window(desk: World) -> None:
    await desk.post("AB123CD")
    await desk.post("ZZ999ZZ", ts=(NOW - dt.timedelta(hours=2)).isoformat())
    window = {
        "gate": "PD-03",
        "from": (NOW - dt.timedelta(hours=1)).isoformat(),
        "to": (NOW + dt.timedelta(minutes=1)).isoformat(),
    }
    status, body = await search(desk.client, **window)
    assert status == 200, body
    assert [t["plate"] for t in body["transits"]] == ["AB123CD"]
    wider = {**window, "from": (NOW - dt.timedelta(hours=3)).isoformat()}
    status, body = await search(desk.client, **wider)
    assert [t["plate"] for t in body["transits"]] == ["ZZ999ZZ", "AB123CD"]
    status, body = await search(desk.client, **{**window, "gate": "PD-01"})
    assert body["transits"] == []
    [*_, record] = audit_records(desk.settings)
    assert (record["action"], record["target"], record["plate"]) == ("transit_search", "PD-01", "")


async def test_refusals_name_the_field(desk: World) -> None:
    today = desk.rules.clock.to_datetime(NOW.timestamp()).date()
    long_ago = (today - dt.timedelta(days=3)).isoformat()
    cases = [
        ({"plate": "AB123CD", "day": today.isoformat()}, OPERATOR, "reason"),  # no reason
        ({"plate": "AB123CD"}, None, "day"),
        ({"plate": "AB123CD", "day": "ieri"}, None, "day"),
        ({"plate": "!!", "day": today.isoformat()}, None, "plate"),
        ({"plate": "AB123CD", "day": long_ago}, None, "day"),  # outside retention (24 h)
        ({"plate": "AB123CD", "day": today.isoformat(), "gate": "PD-03"}, None, "gate"),
        ({"gate": "PD-03", "from": NOW.isoformat()}, None, "to"),
        (
            {
                "gate": "PD-03",
                "from": (NOW - dt.timedelta(hours=25)).isoformat(),
                "to": NOW.isoformat(),
            },
            None,
            "to",
        ),  # more than 24 hours
        (
            {
                "gate": "PD-03",
                "from": (NOW - dt.timedelta(hours=50)).isoformat(),
                "to": (NOW - dt.timedelta(hours=30)).isoformat(),
            },
            None,
            "from",
        ),  # wholly before retention
        ({"gate": "PD-99", "from": NOW.isoformat(), "to": NOW.isoformat()}, None, "gate"),
    ]
    for query, headers, field in cases:
        status, body = await search(desk.client, headers, **query)
        assert (status, body.get("field")) == (422, field), (query, body)
    for headers, code in (({**POLICE, **REASON}, 403), ({**CAMERA, **REASON}, 403)):
        status, _ = await search(desk.client, headers, plate="AB123CD", day=today.isoformat())
        assert status == code
    assert [r for r in audit_records(desk.settings) if r.get("action")] == []
