"""Every vendor format posted to a real service on loopback: a read, a no-read, a low-confidence
read, a duplicate (same event id, and the log's same transit id), a malformed body, and the
vendor's fields kept on the transit record (what is particular to each vendor:
test_vendor_quirks.py)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import msgspec
import pytest

from enforcement.transits import record as transit_record
from enforcement.transits.record import DECODE_RECORD
from enforcement.transits.spool import all_frames

from ...support import payloads as p
from ...support.cameras import (
    AT,
    IDS,
    JSON,
    PERMITTED,
    UNKNOWN,
    VENDORS,
    Cameras,
    Vendor,
    key,
    post,
)


@pytest.mark.parametrize("v", VENDORS, ids=IDS)
async def test_read(cams: Cameras, v: Vendor) -> None:
    reply = await post(cams, v, PERMITTED)
    [verdict] = reply["results"]
    assert (verdict["verdict"], verdict["reason"], verdict["plate"]) == (
        "allowed",
        "permit",
        PERMITTED,
    )
    assert verdict["permits"] == ["RES-1"]
    assert verdict["event_id"] and verdict["transit_id"]
    [pending] = (await post(cams, v, UNKNOWN))["results"]
    assert (pending["verdict"], pending["reason"]) == ("pending", "no_permit")
    assert pending["event_id"] != verdict["event_id"]


@pytest.mark.parametrize("v", VENDORS, ids=IDS)
async def test_no_read(cams: Cameras, v: Vendor) -> None:
    [verdict] = (await post(cams, v, v.no_read))["results"]
    assert (verdict["verdict"], verdict["reason"], verdict["plate"]) == ("review", "unreadable", "")


@pytest.mark.parametrize("v", VENDORS, ids=IDS)
async def test_low_confidence(cams: Cameras, v: Vendor) -> None:
    [low] = (await post(cams, v, UNKNOWN, conf=0.31))["results"]
    assert (low["verdict"], low["reason"]) == ("review", "low_confidence")
    [covered] = (await post(cams, v, PERMITTED, conf=0.31))["results"]
    assert covered["verdict"] == "allowed"  # a permit covers it whatever the confidence


@pytest.mark.parametrize("v", VENDORS, ids=IDS)
async def test_duplicate(cams: Cameras, v: Vendor) -> None:
    """A retry of the same post, and a second read of the same vehicle 2 s later, are one
    transit: same event id, and the log answers with the first transit id."""
    first = (await post(cams, v, UNKNOWN))["results"][0]
    retry = (await post(cams, v, UNKNOWN))["results"][0]
    later = (await post(cams, v, UNKNOWN, at=AT + dt.timedelta(seconds=2)))["results"][0]
    if v.name == "rekor":  # a group's start is its id: a later start is another vehicle
        assert later["event_id"] != first["event_id"]
        later = retry
    assert first["event_id"] == retry["event_id"] == later["event_id"]
    assert first["transit_id"] == retry["transit_id"] == later["transit_id"]
    other = (await post(cams, v, PERMITTED))["results"][0]
    assert other["transit_id"] != first["transit_id"]


# A field each vendor's record must keep, in the vendor's own name (a sample, not the list).
KEPT = {
    "hikvision": "licensePlate",
    "axis": "carID",
    "milesight": "plate",
    "platerecognizer": "result",
    "rekor": "best_uuid",
    "dahua": "SnapInfo",
}


@pytest.mark.parametrize("v", VENDORS, ids=IDS)
async def test_raw_fields_kept_on_the_record(cams: Cameras, v: Vendor) -> None:
    """The payload fields that matter reach the transit record as the vendor sent them; the
    pictures (in the body as parts or base64) never do."""
    [verdict] = (await post(cams, v, PERMITTED))["results"]
    [record] = [
        r
        for f in all_frames(cams.settings.storage.spool_dir)
        if (r := DECODE_RECORD(f)).id == verdict["transit_id"]
    ]
    fields = msgspec.msgpack.decode(record.vendor)
    assert KEPT[v.name] in fields, fields
    text = json.dumps(fields)
    assert PERMITTED in text.upper()
    assert p.JPEG_B64 not in text and "jpeg" not in text.lower().replace("imagetype", "")


async def test_rekor_record_keeps_where_the_pictures_are(cams: Cameras) -> None:
    """A group's record keeps what finds its pictures on the agent and what a reviewer needs
    beside the read: agent, camera, best frame, end, region, direction, the alternatives
    with their confidences. Not what the record holds already, nor the frame list."""
    group = p.rekor_group(PERMITTED, AT + dt.timedelta(seconds=50), 93.0, candidates=["AB128CD"])
    status, reply = await cams.post("/v1/cameras/rekor", p.dump(group), key("rekor"))
    assert status == 200, reply
    [verdict] = reply["results"]
    [record] = [
        r
        for f in all_frames(cams.settings.storage.spool_dir)
        if (r := DECODE_RECORD(f)).id == verdict["transit_id"]
    ]
    assert msgspec.msgpack.decode(record.vendor) == {
        "agent_uid": group["agent_uid"],
        "camera_id": 1234,
        "epoch_end": group["epoch_end"],
        "best_uuid": group["best_uuid"],
        "best_region": "it",
        "travel_direction": 181.5,
        "is_parked": False,
        "candidates": [
            {"plate": PERMITTED, "confidence": 93.0},
            {"plate": "AB128CD", "confidence": 80.1},
        ],
    }
    assert (record.raw, record.confidence) == (PERMITTED, 0.93)


def test_kept_fields_are_bounded() -> None:
    """A blob where a value was due is cut, not stored whole and not refused; a record
    without one is encoded as it stands, its fields as the adapter declared them."""

    class Event(msgspec.Struct, omit_defaults=True):
        plate: str | None = None
        note: str | None = None
        tags: list[str] = []

    def logged(fields: Event) -> tuple[bytes, Any]:
        record = transit_record.TransitRecord(
            "id",
            "cam",
            "e-1",
            "G",
            "Z",
            "AB123CD",
            "AB123CD",
            1.8e9,
            1.8e9,
            "allowed",
            "permit",
            vendor=fields,
        )  # type: ignore[arg-type]
        data = transit_record.encode_record(record)
        return data, msgspec.msgpack.decode(DECODE_RECORD(data).vendor)

    data, kept = logged(Event("AB123CD", "x" * 100_000, ["t"] * 500))
    assert kept == {"plate": "AB123CD", "note": "x" * transit_record.MAX_FIELD, "tags": ["t"] * 10}
    assert len(data) <= transit_record.MAX_RECORD
    small = Event("AB123CD", "x" * 1000, ["t"] * 20)  # under the cap: kept whole
    data, kept = logged(small)
    assert kept == msgspec.to_builtins(small)
    assert data == transit_record.ENCODE(
        msgspec.structs.replace(
            DECODE_RECORD(data), vendor=msgspec.Raw(msgspec.msgpack.encode(small))
        )
    )


@pytest.mark.parametrize("v", VENDORS, ids=IDS)
async def test_malformed(cams: Cameras, v: Vendor) -> None:
    body, headers, want, field = v.malformed
    status, reply = await cams.post(v.path, body, {**key(v.name), **headers})
    assert status == want, reply
    assert reply["error"] in ("malformed_body", "malformed_json", "invalid") and reply["detail"]
    assert reply.get("field") == field
    status, reply = await cams.post(v.path, b"\x00\xff not a payload", {**key(v.name), **JSON})
    assert status == 400 and reply["error"] in ("malformed_body", "malformed_json"), reply
