"""Payloads captured from real devices, or the vendors' own documented examples, as found in
public sources (captured/SOURCES.md), posted to a running service the way each camera posts
them: every read must be understood (200, the plate as sent, a judged verdict, a transit id)
and every heartbeat acknowledged and ignored.

The captures are years old, so their reads fall outside the index's history and are judged
`review` / `too_old` (a no-read `review` / `unreadable`): what matters here is that the
service read them, not what it decided. No fixture's time is rewritten."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from enforcement.transits.record import DECODE_RECORD
from enforcement.transits.spool import all_frames

from ...support import payloads as p
from ...support.cameras import Cameras, form, key

CAPTURED = Path(__file__).parent / "captured"
JUDGED = frozenset({"allowed", "pending", "review", "not_enforced"})


def as_sent(how: str, raw: bytes) -> tuple[Any, dict[str, str]]:
    """The body and headers a camera of this kind sends around the captured payload."""
    if how == "xml":  # ISAPI alarm host, plain XML body
        return raw, {"Content-Type": "application/xml"}
    if how == "json":
        return raw, {"Content-Type": "application/json"}
    if how == "hikvision-multipart":  # anpr.xml beside picture parts, one of them empty
        return form(
            ("anpr.xml", raw, 'text/xml; charset="UTF-8"', "anpr.xml"),
            ("licensePlatePicture.jpg", b"", "image/jpeg", "licensePlatePicture.jpg"),
            ("vehiclePicture.jpg", p.JPEG, "image/jpeg", "vehiclePicture.jpg"),
        ), {}
    if how == "axis-multipart":  # LPV push with use_multipart: an event part and an image part
        return form(
            ("event", raw, "application/json", "event.json"),
            ("image", p.JPEG, "image/jpeg", "image.jpg"),
        ), {}
    if how == "platerecognizer-multipart":  # Stream / "webhook with image": json + upload
        return form(
            ("json", raw.decode(), None, None), ("upload", p.JPEG, "image/jpeg", "image.jpg")
        ), {}
    raise AssertionError(how)


@dataclass(frozen=True)
class Captured:
    file: str
    how: str
    # One (normalised plate, reason) per read, in the payload's order; reason None: any
    # judged reason. Empty with `ignored` set: a heartbeat or another event type.
    reads: tuple[tuple[str, str | None], ...] = ()
    ignored: str | None = None

    @property
    def vendor(self) -> str:
        return self.file.split("-", 1)[0]


CASES = [
    # Hikvision DS-2CD4A26FWD-IZS/P (hikvision_next fixtures, from a user's debug log)
    Captured(
        "hikvision-ipc-anpr-plate-detected.xml", "hikvision-multipart", (("KH35192", "too_old"),)
    ),
    Captured("hikvision-ipc-anpr-plate-detected.xml", "xml", (("KH35192", "too_old"),)),
    Captured("hikvision-ipc-anpr-plate-unknown.xml", "hikvision-multipart", (("", "unreadable"),)),
    Captured("hikvision-videoloss-heartbeat.xml", "xml", ignored="eventType videoloss"),
    # AXIS License Plate Verifier push events
    Captured("axis-lpv-p1445-lost.json", "axis-multipart", (("RLE11684", "too_old"),)),
    Captured("axis-lpv-p1445-lost.json", "json", (("RLE11684", "too_old"),)),
    Captured("axis-lpv-vapix-update.json", "axis-multipart", (("HWR6677", "too_old"),)),
    Captured("axis-lpv-vapix-new-blocklist.json", "axis-multipart", (("TOLSL123", "too_old"),)),
    # Milesight LPR HTTP post (ex_nvr's recorded event)
    Captured("milesight-lpr-exnvr.json", "json", (("01D12345", "too_old"),)),
    # Plate Recognizer webhooks
    Captured(
        "platerecognizer-stream-recognition.json",
        "platerecognizer-multipart",
        (("9JUB11", "too_old"),),
    ),
    Captured("platerecognizer-stream-recognition.json", "json", (("9JUB11", "too_old"),)),
    Captured(
        "platerecognizer-snapshot-image-done.json",
        "json",
        (("765410", "too_old"), ("830265", "too_old")),
    ),
    Captured("platerecognizer-snapshot-naive-timestamp.json", "json", (("FM046SC", None),)),
    # Rekor Scout / OpenALPR agent
    Captured("rekor-alpr-group-v2.json", "json", (("A424761", "too_old"),)),
    Captured("rekor-alpr-group-v1-docs.json", "json", (("A13709", "too_old"),)),
    Captured("rekor-heartbeat-v1-docs.json", "json", ignored="heartbeat"),
]
IDS = [f"{c.file.rsplit('.', 1)[0]}:{c.how}" for c in CASES]


async def post(cams: Cameras, case: Captured) -> tuple[int, Any]:
    body, headers = as_sent(case.how, (CAPTURED / case.file).read_bytes())
    return await cams.post(f"/v1/cameras/{case.vendor}", body, {**key(case.vendor), **headers})


def test_every_fixture_is_posted_and_sourced() -> None:
    files = {f.name for f in CAPTURED.iterdir() if f.suffix in (".json", ".xml")}
    assert files == {c.file for c in CASES}
    sources = (CAPTURED / "SOURCES.md").read_text()
    assert all(f"`{name}`" in sources for name in files)


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_captured_payload_is_understood(cams: Cameras, case: Captured) -> None:
    status, reply = await post(cams, case)
    assert status == 200, reply
    if case.ignored is not None:
        assert reply == {"results": [], "ignored": case.ignored}
        return
    assert "ignored" not in reply, reply
    assert len(reply["results"]) == len(case.reads), reply
    for verdict, (plate, reason) in zip(reply["results"], case.reads, strict=True):
        assert verdict["plate"] == plate, verdict
        assert verdict["verdict"] in JUDGED and verdict["reason"], verdict
        if reason is not None:
            assert verdict["reason"] == reason, verdict
        assert verdict["event_id"] and verdict["transit_id"], verdict
    again = await post(cams, case)  # a camera's retry of the same post: the same transits
    assert [v["transit_id"] for v in again[1]["results"]] == [
        v["transit_id"] for v in reply["results"]
    ]


def record(cams: Cameras, transit_id: str) -> Any:
    [found] = [
        r
        for f in all_frames(cams.settings.storage.spool_dir)
        if (r := DECODE_RECORD(f)).id == transit_id
    ]
    return found


@pytest.mark.parametrize(
    ("case", "instant"),
    [
        (CASES[0], "2023-08-11T13:49:00+01:00"),  # dateTime, with its offset
        (CASES[4], "2021-06-11T10:05:38.252+00:00"),  # capture_timestamp (datetime is local)
        (CASES[9], "2021-09-29T05:56:13.606935+00:00"),
        (CASES[13], "2020-12-31T16:55:31.402+00:00"),  # epoch_start
    ],
    ids=["hikvision", "axis", "platerecognizer-stream", "rekor"],
)
async def test_capture_instant_on_the_record(cams: Cameras, case: Captured, instant: str) -> None:
    """The record keeps the capture instant the device meant, and the payload's fields
    without its pictures."""
    status, reply = await post(cams, case)
    assert status == 200, reply
    found = record(cams, reply["results"][0]["transit_id"])
    assert found.ts == pytest.approx(dt.datetime.fromisoformat(instant).timestamp())
    text = json.dumps(msgspec.msgpack.decode(found.vendor), ensure_ascii=False)
    assert "/9j/" not in text and p.JPEG_B64 not in text


async def test_milesight_record_keeps_the_read(cams: Cameras) -> None:
    """Milesight's local time is read in the camera's zone, the plate kept as sent and the
    picture dropped."""
    status, reply = await post(cams, CASES[8])
    assert status == 200, reply
    found = record(cams, reply["results"][0]["transit_id"])
    assert found.ts == dt.datetime(2024, 2, 1, 6, 0, 5, 509000, p.ROME).timestamp()
    fields = msgspec.msgpack.decode(found.vendor)
    assert fields["plate"] == "01-D-12345" and fields["type"] == "White"
    assert "plate_image" not in fields


async def test_platerecognizer_naive_timestamp_is_utc(cams: Cameras) -> None:
    """Snapshot (2025) sends data.timestamp as '2025-09-09 23:22:38.030345': UTC without an
    offset, not the camera's local time."""
    status, reply = await post(cams, CASES[12])
    assert status == 200, reply
    found = record(cams, reply["results"][0]["transit_id"])
    assert found.ts == dt.datetime(2025, 9, 9, 23, 22, 38, 30345, dt.UTC).timestamp()
