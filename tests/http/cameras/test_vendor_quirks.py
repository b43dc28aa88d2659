"""What is particular to each vendor format, posted to a real service on loopback: Hikvision's
multipart, JSON, namespaces, heartbeats, retransmissions and XML attacks; Axis's event states;
Milesight's local time and firmware dialects; Plate Recognizer's multipart and snapshots;
Rekor's groups without a Content-Type; Dahua's paths and keep-alives; byte-order marks."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from enforcement.transits.record import DECODE_RECORD
from enforcement.transits.spool import all_frames

from ...support import payloads as p
from ...support.cameras import AT, JSON, PERMITTED, UNKNOWN, VENDORS, XML, Cameras, form, key, post

# -- Hikvision ------------------------------------------------------------------------------


async def test_hikvision_multipart_json_and_namespaces(cams: Cameras) -> None:
    xml = p.hikvision_xml(PERMITTED, AT)
    body = form(
        ("anpr.xml", xml, "text/xml", "anpr.xml"),
        ("licensePlatePicture.jpg", b"", "image/jpeg", "licensePlatePicture.jpg"),
        ("detectionPicture.jpg", p.JPEG * 2000, "image/jpeg", "detectionPicture.jpg"),
    )
    status, reply = await cams.post("/v1/cameras/hikvision", body, key("hikvision"))
    assert status == 200 and reply["results"][0]["verdict"] == "allowed", reply
    status, reply = await cams.post(
        "/v1/cameras/hikvision",
        p.dump(p.hikvision_json(PERMITTED, AT)),
        {**key("hikvision"), **JSON},
    )
    assert status == 200 and reply["results"][0]["verdict"] == "allowed", reply
    for ns in ("", "http://www.isapi.org/ver20/XMLSchema", "urn:other"):
        status, reply = await cams.post(
            "/v1/cameras/hikvision",
            p.hikvision_xml(UNKNOWN, AT, 20, namespace=ns),
            {**key("hikvision"), **XML},
        )
        assert status == 200 and reply["results"][0]["reason"] == "low_confidence", (ns, reply)
    status, reply = await cams.post(
        "/v1/cameras/hikvision", form(("picture", p.JPEG, "image/jpeg", "a.jpg")), key("hikvision")
    )
    assert (status, reply["field"]) == (422, "anpr.xml")


async def test_hikvision_heartbeat_and_retransmission(cams: Cameras) -> None:
    alive = (
        p.hikvision_xml("", AT, event_type="videoloss")
        .replace(b"<ANPR>", b"<X>")
        .replace(b"</ANPR>", b"</X>")
    )
    status, reply = await cams.post("/v1/cameras/hikvision", alive, {**key("hikvision"), **XML})
    assert (status, reply) == (200, {"results": [], "ignored": "eventType videoloss"})
    live = (await post(cams, VENDORS[0], UNKNOWN))["results"][0]
    late = p.hikvision_xml(UNKNOWN, AT, retransmission=True)  # the original capture time
    status, reply = await cams.post("/v1/cameras/hikvision", late, {**key("hikvision"), **XML})
    assert status == 200 and reply["results"][0]["transit_id"] == live["transit_id"]
    old = AT - dt.timedelta(days=40)  # re-uploaded after the index's history: a person looks
    status, reply = await cams.post(
        "/v1/cameras/hikvision",
        p.hikvision_xml(UNKNOWN, old, retransmission=True),
        {**key("hikvision"), **XML},
    )
    assert reply["results"][0]["reason"] == "too_old"


BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<EventNotificationAlert><eventType>ANPR</eventType><dateTime>2026-11-22T10:00:00+01:00</dateTime>
<ANPR><licensePlate>&lol4;</licensePlate></ANPR></EventNotificationAlert>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<EventNotificationAlert><eventType>ANPR</eventType><ANPR><licensePlate>&x;</licensePlate>
</ANPR></EventNotificationAlert>"""


@pytest.mark.parametrize("body", [BOMB, XXE], ids=["billion-laughs", "external-entity"])
async def test_xml_attacks_refused(cams: Cameras, body: bytes) -> None:
    status, reply = await cams.post("/v1/cameras/hikvision", body, {**key("hikvision"), **XML})
    assert (status, reply["error"]) == (400, "malformed_body")
    assert "DTD" in reply["detail"]
    multipart = form(("anpr.xml", body, "text/xml", "anpr.xml"))
    status, reply = await cams.post("/v1/cameras/hikvision", multipart, key("hikvision"))
    assert (status, reply["error"]) == (400, "malformed_body")


# -- Axis -----------------------------------------------------------------------------------


async def test_axis_new_update_lost_are_one_transit(cams: Cameras) -> None:
    path, headers = "/v1/cameras/axis", {**key("axis"), **JSON}
    seen = []
    for state, plate, at in (
        ("new", "AB123C0", AT),
        ("updated", PERMITTED, AT),
        ("lost", PERMITTED, AT + dt.timedelta(seconds=2)),
    ):
        event = p.axis_event(plate, at, car_id="88", state=state, with_offset=state == "lost")
        status, reply = await cams.post(path, p.dump(event), headers)
        assert status == 200, reply
        seen.append(reply["results"][0])
    assert len({v["event_id"] for v in seen}) == 1 and len({v["transit_id"] for v in seen}) == 1
    other = p.axis_event(PERMITTED, AT, car_id="89")
    assert (await cams.post(path, p.dump(other), headers))[1]["results"][0]["event_id"] != seen[0][
        "event_id"
    ]


# -- Milesight ------------------------------------------------------------------------------


async def test_milesight_local_time(cams: Cameras) -> None:
    """Local time without an offset is read in the camera's zone (Europe/Rome): ten minutes
    ahead there is beyond the 5-minute clock skew; read as UTC it would lie in the past."""
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10)
    status, reply = await cams.post(
        "/v1/cameras/milesight", p.dump(p.milesight(UNKNOWN, ahead)), {**key("milesight"), **JSON}
    )
    assert reply["results"][0]["reason"] == "clock_skew", reply
    counting = {"event": "Vehicle Counting", "device": "Network Camera", "time": "-"}
    status, reply = await cams.post(
        "/v1/cameras/milesight", p.dump(counting), {**key("milesight"), **JSON}
    )
    assert (status, reply["ignored"]) == (200, "event Vehicle Counting")


async def test_milesight_newer_firmware_keys(cams: Cameras) -> None:
    """Newer firmware's configurable body: `license_plate`, `country_region`,
    `confidence_int`, pictures as `*_snapshot`; "No Plates" when nothing was read."""
    local = AT.astimezone(p.ROME).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    body = {
        "device_name": "LPR-7",
        "mac_address": "1C:C3:16:00:00:01",
        "sn": "6223C0000001",
        "event_type": "LPR",
        "time": local,
        "license_plate": PERMITTED,
        "country_region": "Italy",
        "confidence_int": "31",
        "license_plate_snapshot": "AAAA",
        "vehicle_snapshot": "AAAA",
        "full_snapshot": "AAAA",
    }
    headers = {**key("milesight"), **JSON}
    status, reply = await cams.post("/v1/cameras/milesight", p.dump(body), headers)
    assert status == 200, reply
    [verdict] = reply["results"]
    assert (verdict["verdict"], verdict["plate"]) == ("allowed", PERMITTED), reply
    [record] = [
        r
        for f in all_frames(cams.settings.storage.spool_dir)
        if (r := DECODE_RECORD(f)).id == verdict["transit_id"]
    ]
    assert (record.confidence, record.country) == (0.31, "IT")
    kept = msgspec.msgpack.decode(record.vendor)
    assert kept["country_region"] == "Italy" and "full_snapshot" not in kept
    status, reply = await cams.post(
        "/v1/cameras/milesight", p.dump({**body, "license_plate": "No Plates"}), headers
    )
    assert status == 200 and reply["results"][0]["reason"] == "unreadable", reply


async def test_milesight_spaced_keys(cams: Cameras) -> None:
    """Firmware that spell keys as words (`License Plate`, `Plate Color`, `TIME`) are read by
    the folded names; the record keeps the fields under those names, never the picture."""
    local = AT.astimezone(p.ROME).strftime("%Y-%m-%d %H:%M:%S")
    body = {
        "Device": "LPR-9",
        "TIME": local,
        "License Plate": PERMITTED,
        "Region": "ITA",
        "Confidence": "88",
        "Plate Color": "White",
        "Vehicle Brand": "Fiat",
        "Plate Image": p.JPEG_B64,
    }
    status, reply = await cams.post(
        "/v1/cameras/milesight", p.dump(body), {**key("milesight"), **JSON}
    )
    assert status == 200, reply
    [verdict] = reply["results"]
    assert (verdict["verdict"], verdict["plate"]) == ("allowed", PERMITTED), reply
    [record] = [
        r
        for f in all_frames(cams.settings.storage.spool_dir)
        if (r := DECODE_RECORD(f)).id == verdict["transit_id"]
    ]
    assert (record.confidence, record.country) == (0.88, "ITA")
    assert record.ts == dt.datetime.fromisoformat(local).replace(tzinfo=p.ROME).timestamp()
    assert msgspec.msgpack.decode(record.vendor) == {
        "device": "LPR-9",
        "time": local,
        "license_plate": PERMITTED,
        "region": "ITA",
        "confidence": "88",
        "plate_color": "White",
        "Vehicle Brand": "Fiat",
    }


# -- Plate Recognizer -----------------------------------------------------------------------


async def test_platerecognizer_multipart_snapshot_and_candidates(cams: Cameras) -> None:
    path = "/v1/cameras/platerecognizer"
    stream = p.platerecognizer_stream([(PERMITTED, 0.9), (UNKNOWN, 0.9)], AT)
    body = form(
        ("json", p.dump(stream).decode(), "text/plain", None),
        ("upload", p.JPEG, "image/jpeg", "car.jpg"),
    )
    status, reply = await cams.post(path, body, key("platerecognizer"))
    assert status == 200, reply
    assert [v["verdict"] for v in reply["results"]] == ["allowed", "pending"]
    snap = p.platerecognizer_snapshot(PERMITTED, 0.88, AT)
    status, reply = await cams.post(path, p.dump(snap), {**key("platerecognizer"), **JSON})
    assert reply["results"][0]["verdict"] == "allowed"
    # The camera was torn between ZZ999ZZ and a permitted plate: a person must look.
    near = p.platerecognizer_stream(
        [(UNKNOWN, 0.9)], AT - dt.timedelta(minutes=2), candidates=[PERMITTED]
    )
    status, reply = await cams.post(path, p.dump(near), {**key("platerecognizer"), **JSON})
    assert (reply["results"][0]["verdict"], reply["results"][0]["reason"]) == (
        "review",
        "near_match",
    )
    status, reply = await cams.post(
        path, p.dump({"hook": {"event": "heartbeat"}}), {**key("platerecognizer"), **JSON}
    )
    assert (status, reply["ignored"]) == (200, "hook event heartbeat")


# -- Rekor ----------------------------------------------------------------------------------


async def test_rekor_without_content_type(cams: Cameras) -> None:
    """Posts without a Content-Type are read; a preview group is acknowledged and left for
    the complete group, whose read may differ (here the preview misread a letter): a
    provisional read must never become the transit."""
    path = "/v1/cameras/rekor"
    preview = p.rekor_group(PERMITTED[:-1] + "0", AT, preview=True)
    final = p.rekor_group(PERMITTED, AT)
    replies = []
    for group in (preview, final):
        async with cams.session.post(
            cams.base + path,
            data=p.dump(group),
            headers=key("rekor"),
            skip_auto_headers=["Content-Type"],
        ) as r:
            assert r.status == 200 and "Content-Type" not in r.request_info.headers
            replies.append(await r.json())
    assert replies[0] == {"results": [], "ignored": "alpr_group preview"}
    [verdict] = replies[1]["results"]
    assert verdict["event_id"] == f"{'Y' * 40}-1234-{int(AT.timestamp() * 1000)}-0"
    assert (verdict["verdict"], verdict["plate"]) == ("allowed", PERMITTED)
    beside = p.rekor_group(UNKNOWN, AT, plate_index=1)  # another car in the same first frame
    status, reply = await cams.post(path, p.dump(beside), key("rekor"))
    assert reply["results"][0]["event_id"].endswith("-1")
    assert reply["results"][0]["verdict"] == "pending"
    frame = p.rekor_results([(PERMITTED, 91.0), (UNKNOWN, 88.0)], AT)
    status, reply = await cams.post(path, p.dump(frame), key("rekor"))
    assert [v["verdict"] for v in reply["results"]] == ["allowed", "pending"]
    status, reply = await cams.post(path, p.dump(p.rekor_heartbeat(AT)), key("rekor"))
    assert (status, reply) == (200, {"results": [], "ignored": "heartbeat"})
    torn = p.rekor_group(UNKNOWN, AT + dt.timedelta(seconds=30), candidates=[PERMITTED])
    status, reply = await cams.post(path, p.dump(torn), key("rekor"))
    assert reply["results"][0]["reason"] == "near_match"
    # candidates only at the top level (best_plate without them): still read, when needed
    top = p.rekor_group(UNKNOWN, AT + dt.timedelta(seconds=40), candidates=[PERMITTED])
    del top["best_plate"]["candidates"]
    status, reply = await cams.post(path, p.dump(top), key("rekor"))
    assert reply["results"][0]["reason"] == "near_match", reply
    # ... and a malformed top-level list gives no alternatives, not an error
    top = {**top, "epoch_start": top["epoch_start"] + 10_000, "candidates": {"plate": 1}}
    status, reply = await cams.post(path, p.dump(top), key("rekor"))
    assert (status, reply["results"][0]["reason"]) == (200, "no_permit"), reply


# -- Dahua ----------------------------------------------------------------------------------


async def test_dahua_paths_keepalive_and_no_plate(cams: Cameras) -> None:
    alive = p.dump({"Active": "keepAlive", "DeviceID": "7E0C1B2PAJ00001"})
    for path, headers in (
        ("/NotificationInfo/KeepAlive", key("dahua")),
        ("/v1/cameras/dahua/demo-dahua-token/NotificationInfo/KeepAlive", {}),
    ):
        status, reply = await cams.post(path, alive, {**headers, **JSON})
        assert (status, reply) == (200, {"Result": True})
    status, reply = await cams.post(
        "/v1/cameras/dahua/demo-dahua-token/NotificationInfo/TollgateInfo",
        p.dump(p.dahua(PERMITTED, AT)),
        JSON,
    )
    assert reply["Result"] is True and reply["results"][0]["verdict"] == "allowed"
    status, reply = await cams.post(
        "/v1/cameras/dahua", p.dump(p.dahua("", AT, exists=False)), {**key("dahua"), **JSON}
    )
    assert reply["results"][0]["reason"] == "unreadable"
    status, reply = await cams.post(
        "/NotificationInfo/TollgateInfo", p.dump({"Active": 1}), {**key("dahua"), **JSON}
    )
    assert (status, reply["field"]) == (422, "Picture")


async def test_byte_order_mark_and_charset(cams: Cameras) -> None:
    """Firmware that put a UTF-8 byte-order mark before the body, or a charset on the type."""
    xml = b"\xef\xbb\xbf" + p.hikvision_xml(PERMITTED, AT)
    status, reply = await cams.post(
        "/v1/cameras/hikvision",
        xml,
        {**key("hikvision"), "Content-Type": 'application/xml; charset="UTF-8"'},
    )
    assert (status, reply["results"][0]["verdict"]) == (200, "allowed"), reply
    body = b"\xef\xbb\xbf" + p.dump(p.dahua(PERMITTED, AT))
    status, reply = await cams.post(
        "/NotificationInfo/TollgateInfo", body, {**key("dahua"), "Content-Type": "text/plain"}
    )
    assert (status, reply["results"][0]["verdict"]) == (200, "allowed"), reply
