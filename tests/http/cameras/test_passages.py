"""One physical passage, one transit: a camera's corrections are judged again, a reused event
id is another passage (enforcement/transits/passages.py), through the real service.

Never is one car answered with another car's verdict: an Axis camera restarted mid-day counts
its car ids from 1 again; an Axis update, a Rekor group or a native camera corrects a read it
got wrong, and the corrected read is what is judged, answered and followed up.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from enforcement.transits.record import DECODE_RECORD, TransitRecord
from enforcement.transits.spool import all_frames

from ...support import payloads as p
from ...support.api import CAMERA, Client, transit
from ...support.cameras import AT, JSON, PERMITTED, UNKNOWN, Cameras, key


def records(settings: Any) -> list[TransitRecord]:
    return [DECODE_RECORD(f) for f in all_frames(settings.storage.spool_dir)]


async def axis(cams: Cameras, plate: str, at: dt.datetime, car: str, state: str) -> dict[str, Any]:
    event = p.axis_event(plate, at, car_id=car, state=state)
    status, reply = await cams.post("/v1/cameras/axis", p.dump(event), {**key("axis"), **JSON})
    assert status == 200, reply
    return reply["results"][0]  # type: ignore[no-any-return]


def same_local_day(*instants: dt.datetime) -> tuple[dt.datetime, ...]:
    """`instants` moved back an hour if they straddle a local midnight (Axis ids carry it)."""
    days = {i.astimezone(p.ROME).date() for i in instants}
    return instants if len(days) == 1 else tuple(i - dt.timedelta(hours=1) for i in instants)


async def test_an_axis_car_id_reused_after_a_restart_is_another_transit(cams: Cameras) -> None:
    """10:05 car 17 holds a permit; the camera restarts; 16:30 car 17 is another car."""
    morning, afternoon = same_local_day(AT - dt.timedelta(minutes=40), AT)
    first = await axis(cams, PERMITTED, morning, "17", "new")
    second = await axis(cams, UNKNOWN, afternoon, "17", "new")
    assert first["event_id"] == second["event_id"]  # the camera's own name for both
    assert (first["verdict"], first["plate"]) == ("allowed", PERMITTED)
    assert (second["verdict"], second["reason"], second["plate"]) == (
        "pending",
        "no_permit",
        UNKNOWN,
    )
    assert second["transit_id"] != first["transit_id"]
    logged = records(cams.settings)
    assert [(r.plate, r.verdict, r.id) for r in logged] == [
        (PERMITTED, "allowed", first["transit_id"]),
        (UNKNOWN, "pending", second["transit_id"]),
    ]


async def test_an_axis_update_that_changes_the_plate_is_judged_again(cams: Cameras) -> None:
    new = await axis(cams, UNKNOWN, AT, "55", "new")
    update = await axis(cams, PERMITTED, AT + dt.timedelta(seconds=1), "55", "update")
    lost = await axis(cams, PERMITTED, AT + dt.timedelta(seconds=3), "55", "lost")
    assert (new["verdict"], update["verdict"], lost["verdict"]) == ("pending", "allowed", "allowed")
    assert new["transit_id"] == update["transit_id"] == lost["transit_id"]
    # The record keeps both reads, and which one stands: the correction, last.
    logged = records(cams.settings)
    assert [(r.id, r.plate, r.verdict, r.earlier) for r in logged] == [
        (new["transit_id"], UNKNOWN, "pending", []),
        (new["transit_id"], PERMITTED, "allowed", [UNKNOWN]),
    ]
    # A late retry of the first read gets the standing answer, not its own again.
    again = await axis(cams, UNKNOWN, AT, "55", "new")
    assert (again["verdict"], again["transit_id"]) == ("allowed", new["transit_id"])
    assert len(records(cams.settings)) == 2


async def test_a_rekor_group_with_a_better_plate_corrects_the_first(cams: Cameras) -> None:
    path, headers = "/v1/cameras/rekor", key("rekor")
    first = (await cams.post(path, p.dump(p.rekor_group(UNKNOWN, AT)), headers))[1]["results"][0]
    better = (await cams.post(path, p.dump(p.rekor_group(PERMITTED, AT)), headers))[1]["results"][0]
    assert first["event_id"] == better["event_id"]  # the same group: its start names it
    assert (first["verdict"], better["verdict"]) == ("pending", "allowed")
    assert first["transit_id"] == better["transit_id"]
    assert [r.earlier for r in records(cams.settings)] == [[], [UNKNOWN]]


async def native(api: Client, plate: str, event_id: str, ts: dt.datetime) -> dict[str, Any]:
    body = transit(plate, event_id=event_id, ts=ts.isoformat())
    status, reply, _ = await api.request("POST", "/v1/transits", CAMERA, json=body)
    assert status == 200, reply
    return reply  # type: ignore[no-any-return]


async def test_a_native_camera_corrects_an_event_by_posting_it_again(api: Client) -> None:
    """The same event_id with another plate, within transit_log.correction_window (10 min)
    of the read it corrects: judged again, under the same transit id."""
    earlier = AT - dt.timedelta(minutes=12)
    read = await native(api, "ZZ999ZZ", "cam-1-0042", earlier)
    fixed = await native(api, "AB123CD", "cam-1-0042", earlier)
    assert (read["verdict"], fixed["verdict"]) == ("pending", "allowed")
    assert read["transit_id"] == fixed["transit_id"]
    retry = await native(api, "ZZ999ZZ", "cam-1-0042", earlier)  # the first post, retried
    assert (retry["verdict"], retry["transit_id"]) == ("allowed", read["transit_id"])
    # Twelve minutes on, the same name is another passage (the camera reused its id).
    later = await native(api, "ZZ999ZZ", "cam-1-0042", AT)
    assert later["verdict"] == "pending" and later["transit_id"] != read["transit_id"]
    logged = records(api.settings)  # type: ignore[attr-defined]
    assert [(r.plate, r.earlier, r.id == read["transit_id"]) for r in logged] == [
        ("ZZ999ZZ", [], True),
        ("AB123CD", ["ZZ999ZZ"], True),
        ("ZZ999ZZ", [], False),
    ]
