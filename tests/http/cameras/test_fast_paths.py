"""A vendor's fast path (`Vendor.transit`: the usual post straight to its transit) gives, for
every body it accepts, exactly the transit the general path (`from_body`, then
`routes._transits`) makes of it; anything else it declines, and the general path takes it.
Checked on the documented payloads, the captured ones, and hypothesis's variations of them."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcement.config.load import load_config
from enforcement.config.settings import Camera
from enforcement.http import errors
from enforcement.http.cameras.reads import Context
from enforcement.http.cameras.routes import VENDORS, _transits
from enforcement.transits.record import ENCODE, Transit

from ...support import payloads as p
from ...support.common import DEMO_CONFIG

CAPTURED = Path(__file__).parent / "captured"
AT = dt.datetime(2026, 11, 23, 9, 15, 30, tzinfo=dt.UTC)
SETTINGS, _ = load_config(DEMO_CONFIG, {})
CAMERAS = {c.vendor: c for c in SETTINGS.cameras.values()}
FAST = sorted(VENDORS)  # every vendor has one


def general(vendor: str, body: bytes, camera: Camera) -> list[Transit] | None:
    """The general path's transits, or None where it judges nothing (ignored, or an error)."""
    ctx = Context(camera, ZoneInfo(camera.timezone), 1 << 20, AT.timestamp())
    try:
        payload = VENDORS[vendor].from_body(body, ctx)
    except errors.ApiError:
        return None
    if payload.ignored is not None:
        return None
    return _transits(camera.id, camera.gate, payload.reads)


def same_as_general(vendor: str, body: bytes) -> Transit | None:
    """The fast path's transit, asserted equal to the general path's where it gives one."""
    camera = CAMERAS[vendor]
    got = VENDORS[vendor].transit(body, camera, ZoneInfo(camera.timezone))
    if got is None:
        return None
    want = general(vendor, body, camera)
    assert want is not None and len(want) == 1, (body, want)
    (w,) = want
    for field in ("camera", "gate", "event_id", "raw", "plate", "ts", "confidence", "country"):
        a, b = getattr(got, field), getattr(w, field)
        assert (type(a), a) == (type(b), b), (field, body)  # 1 and 1.0 log differently
    assert ENCODE(got.fields) == ENCODE(w.fields), body  # the record keeps the same bytes
    assert list(got.candidates) == list(w.candidates), body
    return got


def usual(vendor: str) -> list[dict[str, Any]]:
    """Documented payloads of the vendor's usual post, which its fast path must take."""
    if vendor == "rekor":
        return [
            p.rekor_group("AB123CD", AT),
            p.rekor_group("ab 123 cd", AT, confidence=100),
            p.rekor_group("ZZ999ZZ", AT, confidence=0, candidates=["ZZ999Z2"]),
            p.rekor_group("AB123CD", AT, plate_index=1),
        ]
    if vendor == "platerecognizer":
        return [
            p.platerecognizer_stream([("ab123cd", 0.9)], AT),
            p.platerecognizer_stream([("zz999zz", 0.2)], AT),
            p.platerecognizer_snapshot("ab123cd", 1, AT),
        ]
    if vendor == "milesight":
        return [
            p.milesight("AB123CD", AT),
            p.milesight("ab 123 cd", AT, "-"),
            p.milesight("-", AT, "0.4"),
        ]
    if vendor == "axis":
        return [
            p.axis_event("AB123CD", AT),
            p.axis_event("ab 123 cd", AT, "92", state="lost"),
            p.axis_event("ZZ999ZZ", AT, with_offset=True, car_id=""),
        ]
    if vendor == "hikvision":
        return [
            p.hikvision_json("AB123CD", AT),
            p.hikvision_json("ab 123 cd", AT, 100),
            p.hikvision_json("unknown", AT, 0),
        ]
    if vendor == "dahua":
        return [
            p.dahua("AB123CD", AT),
            p.dahua("ZZ 999 ZZ", AT, confidence=None),
            p.dahua("", AT, confidence=0),
            p.dahua("ab123cd", AT, confidence=1),
        ]
    raise AssertionError(f"no usual payloads for {vendor}")


def declined(vendor: str) -> list[dict[str, Any] | str | bytes]:
    """Payloads the fast path must leave to the general path (which may ignore or refuse)."""
    if vendor == "rekor":
        group = p.rekor_group("AB123CD", AT)
        return [
            p.rekor_group("AB123CD", AT, preview=True),
            p.rekor_results([("AB123CD", 90)], AT),
            p.rekor_heartbeat(AT),
            {**group, "best_confidence": "92"},
            {**group, "agent_uid": "-"},
            {**group, "camera_id": "1234"},
            {**group, "epoch_start": str(group["epoch_start"])},
            {**group, "best_plate_number": None},
            {**group, "best_confidence": True},
            {**group, "best_confidence": 101},
            "\ufeff" + json.dumps(group),
            "{",
        ]
    if vendor == "platerecognizer":
        hook = p.platerecognizer_stream([("ab123cd", 0.9)], AT)
        data = hook["data"]
        result = data["results"][0]
        return [
            p.platerecognizer_stream([], AT),
            p.platerecognizer_stream([("ab123cd", 0.9), ("zz999zz", 0.8)], AT),
            {**hook, "data": {**data, "timestamp": "yesterday"}},
            {**hook, "data": {**data, "results": [{**result, "score": "0.9"}]}},
            {**hook, "data": {**data, "results": [{**result, "score": 90}]}},
            {**hook, "data": {**data, "results": [{**result, "plate": None}]}},
            {"hook": hook["hook"]},
            "{",
        ]
    if vendor == "milesight":
        post = p.milesight("AB123CD", AT)
        return [
            {k: v for k, v in post.items() if k != "plate"},
            {k.upper(): v for k, v in post.items()},
            {**post, "time_msec": "-"},
            {**post, "confidence": "high"},
            "{",
        ]
    if vendor == "axis":
        event = p.axis_event("AB123CD", AT)
        plates = ("plateText", "plateUnicode", "plateUTF8", "plateASCII")
        return [
            {k: v for k, v in event.items() if k not in plates},
            {**event, "plateConfidence": "high"},
            {**event, "datetime": "noon", "capture_timestamp": "-"},
            "\ufeff" + json.dumps(event),
            "{",
        ]
    if vendor == "hikvision":
        alert = p.hikvision_json("AB123CD", AT)
        return [
            p.hikvision_xml("AB123CD", AT),
            {**alert, "eventType": "videoloss"},
            {"EventNotificationAlert": alert},
            {**alert, "ANPR": [alert["ANPR"]]},
            {**alert, "dateTime": "-"},
            {**alert, "dateTime": "noon"},
            {**alert, "ANPR": {**alert["ANPR"], "confidenceLevel": "93"}},
            {**alert, "ANPR": {**alert["ANPR"], "licensePlate": 12}},
            " " + json.dumps(alert),
            "{",
        ]
    if vendor == "dahua":
        push = p.dahua("AB123CD", AT)
        pic = push["Picture"]
        return [
            p.dahua("AB123CD", AT, exists=False),
            {"Picture": {**pic, "Plate": {**pic["Plate"], "Confidence": "92"}}},
            {"Picture": {**pic, "Plate": {**pic["Plate"], "Confidence": 101}}},
            {"Picture": {**pic, "SnapInfo": {**pic["SnapInfo"], "AccurateTime": "-"}}},
            {"Picture": {**pic, "SnapInfo": {**pic["SnapInfo"], "AccurateTime": "noon"}}},
            {"Picture": {k: v for k, v in pic.items() if k != "Plate"}},
            {},
            "{",
        ]
    raise AssertionError(f"no declined payloads for {vendor}")


def dump(value: dict[str, Any] | str | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    return (value if isinstance(value, str) else json.dumps(value)).encode()


@pytest.mark.parametrize("vendor", FAST)
def test_the_usual_post_takes_the_fast_path_and_matches_the_general_one(vendor: str) -> None:
    for body in usual(vendor):
        assert same_as_general(vendor, dump(body)) is not None, body


@pytest.mark.parametrize("vendor", FAST)
def test_anything_else_is_left_to_the_general_path(vendor: str) -> None:
    for body in declined(vendor):
        assert same_as_general(vendor, dump(body)) is None, body


def test_captured_payloads_match_wherever_the_fast_path_takes_them() -> None:
    taken = 0
    for vendor in FAST:
        for path in sorted(CAPTURED.glob(f"{vendor}-*.json")):
            taken += same_as_general(vendor, path.read_bytes()) is not None
    assert taken >= 1  # the captured groups are usual posts: the test is not vacuous


# Values a device might put in any field: the fast path must decline or agree.
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10**14),
    st.floats(allow_nan=True),
    st.sampled_from(
        [
            "",
            "-",
            "null",
            " N/A ",
            "it",
            "IT",
            "eu",
            "us-ca",
            "92",
            "AB123CD",
            " ab123cd ",
            "X" * 70,
            "1764000000000",
        ]
    ),
)


def fields(value: Any) -> list[tuple[Any, str]]:
    """Every (object, key) in a JSON value, at any depth (inside lists too)."""
    found: list[tuple[Any, str]] = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.append((value, k))
            found += fields(v)
    elif isinstance(value, list):
        for v in value:
            found += fields(v)
    return found


@pytest.mark.parametrize("vendor", FAST)
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_variations_of_the_usual_post_match_or_are_declined(
    vendor: str, data: st.DataObject
) -> None:
    body = copy.deepcopy(data.draw(st.sampled_from(usual(vendor))))
    places = fields(body)
    for i in data.draw(st.lists(st.integers(0, len(places) - 1), max_size=4, unique=True)):
        obj, key = places[i]
        obj[key] = data.draw(VALUES)
    same_as_general(vendor, json.dumps(body).encode())
