"""Who may post what: camera keys and URL tokens, the camera's own gate and device, body caps,
and the endpoints' place in the OpenAPI document."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
from collections.abc import AsyncIterator

import aiohttp
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcement.config.settings import Camera, Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app

from ...support import payloads as p
from ...support.api import ServiceServer
from ...support.cameras import JSON, MAX_CAMERA_BODY, NOW, PERMITS, PERMITTED, Cameras, key
from ...support.common import publish_permits

MILESIGHT = p.dump(p.milesight(PERMITTED, NOW))


@pytest.mark.parametrize(
    ("path", "headers", "status", "error"),
    [
        ("/v1/cameras/milesight", key("milesight"), 200, None),
        ("/v1/cameras/milesight/demo-milesight-token", {}, 200, None),
        ("/v1/cameras/milesight?token=demo-milesight-token", {}, 200, None),
        (
            "/v1/cameras/milesight",
            {
                "Authorization": "Basic "
                + base64.b64encode(b"cam-milesight:demo-milesight-token").decode()
            },
            200,
            None,
        ),
        ("/v1/cameras/milesight", {}, 401, "unauthorized"),
        ("/v1/cameras/milesight/wrong-token", {}, 401, "unauthorized"),
        (
            "/v1/cameras/milesight",
            {
                "Authorization": "Basic "
                + base64.b64encode(b"cam-axis:demo-milesight-token").decode()
            },
            401,
            "unauthorized",
        ),
        ("/v1/cameras/milesight", {"Authorization": "Bearer nope"}, 401, "unauthorized"),
        # a key that is no camera's (the demo's shared camera key, an admin key)
        ("/v1/cameras/milesight", {"Authorization": "Bearer demo-camera"}, 403, "forbidden"),
        ("/v1/cameras/milesight", {"Authorization": "Bearer demo-admin"}, 403, "forbidden"),
        ("/v1/cameras/milesight", {"Authorization": "Bearer demo-police"}, 403, "forbidden"),
        # another vendor's camera
        ("/v1/cameras/milesight", key("axis"), 403, "forbidden"),
        ("/v1/cameras/milesight/demo-dahua-token", {}, 403, "forbidden"),
        ("/v1/cameras/nikon", key("milesight"), 404, "not_found"),
    ],
)
async def test_credentials(
    cams: Cameras, path: str, headers: dict[str, str], status: int, error: str | None
) -> None:
    got, reply = await cams.post(path, MILESIGHT, {**headers, **JSON})
    assert got == status, reply
    if error:
        assert reply["error"] == error and reply["detail"]
        assert "demo-milesight-token" not in reply["detail"]  # never echoed
    else:
        assert reply["results"][0]["verdict"] == "allowed"
    status, _ = await cams.get("/v1/cameras/milesight")
    assert status == 405


async def test_native_key_only_for_its_camera_and_gate(cams: Cameras) -> None:
    """A [cameras.ID] key posting Varco's own JSON: its camera and gate only (403 naming the
    field); the demo's shared camera key is not bound to a camera."""
    native = {"Authorization": "Bearer demo-native"}
    body = {
        "event_id": "n-1",
        "camera": "cam-native",
        "gate": "PD-03",
        "plate": PERMITTED,
        "ts": NOW.isoformat(),
    }
    status, reply = await cams.post("/v1/transits", msgspec.json.encode(body), {**native, **JSON})
    assert (status, reply["verdict"]) == (200, "allowed")
    for change, field in (({"gate": "PD-01"}, "gate"), ({"camera": "cam-axis"}, "camera")):
        status, reply = await cams.post(
            "/v1/transits", msgspec.json.encode({**body, **change}), {**native, **JSON}
        )
        assert (status, reply["error"], reply["field"]) == (403, "forbidden", field)
    batch = {"transits": [body, {**body, "event_id": "n-2", "gate": "PD-02"}]}
    status, reply = await cams.post(
        "/v1/transits/batch", msgspec.json.encode(batch), {**native, **JSON}
    )
    assert (status, reply["field"]) == (403, "transits[1].gate")
    shared = {"Authorization": "Bearer demo-camera"}
    status, _ = await cams.post(
        "/v1/transits", msgspec.json.encode({**body, "gate": "PD-01"}), {**shared, **JSON}
    )
    assert status == 200


async def test_body_caps(cams: Cameras) -> None:
    path, headers = "/v1/cameras/hikvision", key("hikvision")
    big = p.JPEG * (MAX_CAMERA_BODY // len(p.JPEG) + 10)
    xml = p.hikvision_xml(PERMITTED, NOW)

    def body(picture: bytes) -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("anpr.xml", xml, content_type="text/xml", filename="anpr.xml")
        data.add_field(
            "detectionPicture.jpg",
            io.BytesIO(picture),
            content_type="image/jpeg",
            filename="detectionPicture.jpg",
        )
        return data

    # Pictures up to the cap stream through (beyond aiohttp's 1 MiB client_max_size default
    # for the JSON API, here 1 MiB too) and are dropped.
    status, reply = await cams.post(path, body(big[: MAX_CAMERA_BODY - 4096]), headers)
    assert (status, reply["results"][0]["verdict"]) == (200, "allowed")
    status, reply = await cams.post(path, body(big), headers)
    assert (status, reply["error"]) == (413, "too_large")

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: refused while reading
        yield b'{"data_type": "alpr_group", "vehicle_crop_jpeg": "'
        for _ in range(MAX_CAMERA_BODY // 65536 + 2):
            yield b"A" * 65536
        yield b'"}'

    status, reply = await cams.post("/v1/cameras/rekor", chunked(), key("rekor"))
    assert (status, reply["error"]) == (413, "too_large")
    status, reply = await cams.post(
        "/v1/cameras/dahua", io.BytesIO(b"x" * (MAX_CAMERA_BODY + 1)), {**key("dahua"), **JSON}
    )
    assert (status, reply["error"]) == (413, "too_large")


async def test_device_must_match(demo: tuple[Settings, Rules]) -> None:
    """With `device_id` set, a payload naming another device is refused (403 naming the
    payload's field)."""
    settings, rules = demo
    cameras = dict(settings.cameras)
    cameras["cam-dahua"] = Camera("cam-dahua", "PD-03", "dahua", "Europe/Rome", "7E0C1B2PAJ00001")
    cameras["cam-rekor"] = Camera("cam-rekor", "PD-03", "rekor", "Europe/Rome", "999")
    settings = with_changes(settings, cameras=cameras, server={"snapshot_poll_s": 0.05})
    publish_permits(settings, rules, PERMITS)
    server = ServiceServer(create_app(settings, rules))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = Cameras(session, str(server.make_url("")).rstrip("/"), settings)
            for _ in range(200):
                if (await client.get("/readyz"))[0] == 200:
                    break
                await asyncio.sleep(0.05)
            status, reply = await client.post(
                "/v1/cameras/dahua", p.dump(p.dahua(PERMITTED, NOW)), {**key("dahua"), **JSON}
            )
            assert (status, reply["results"][0]["verdict"]) == (200, "allowed")
            status, reply = await client.post(
                "/v1/cameras/rekor", p.dump(p.rekor_group(PERMITTED, NOW)), key("rekor")
            )
            assert (status, reply["error"], reply["field"]) == (403, "forbidden", "camera_id")
    finally:
        await server.close()


async def test_openapi_documents_camera_paths(cams: Cameras) -> None:
    status, doc = await cams.get("/openapi.json")
    assert status == 200
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    for vendor in ("hikvision", "axis", "milesight", "platerecognizer", "rekor", "dahua"):
        assert "post" in paths[f"/v1/cameras/{vendor}"]
        assert paths[f"/v1/cameras/{vendor}/{{token}}"]["post"]["parameters"][0]["name"] == "token"
    hik = paths["/v1/cameras/hikvision"]["post"]
    assert set(hik["requestBody"]["content"]) == {
        "application/xml",
        "application/json",
        "multipart/form-data",
    }
    assert {"/NotificationInfo/TollgateInfo", "/NotificationInfo/KeepAlive"} <= set(paths)
    assert {"CameraOut", "DahuaOut", "Verdict"} <= set(schemas)

    def refs(node: object) -> set[str]:
        if isinstance(node, dict):
            found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
            return found.union(*(refs(v) for v in node.values()))
        if isinstance(node, list):
            return set().union(*(refs(v) for v in node))
        return set()

    assert {r.rsplit("/", 1)[1] for r in refs(doc)} <= set(schemas)


async def test_metrics_name_routes_not_tokens(cams: Cameras) -> None:
    await cams.post("/v1/cameras/milesight/demo-milesight-token", MILESIGHT, JSON)
    async with cams.session.get(cams.base + "/metrics") as r:
        text = await r.text()
    assert 'route="/v1/cameras/milesight/{token}"' in text
    assert "demo-milesight-token" not in text and PERMITTED not in text


async def test_stale_time_is_judged_not_refused(cams: Cameras) -> None:
    """A camera clock reset to 2001 still gets a verdict (too_old), not an error."""
    old = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    status, reply = await cams.post(
        "/v1/cameras/milesight", p.dump(p.milesight(PERMITTED, old)), {**key("milesight"), **JSON}
    )
    assert (status, reply["results"][0]["reason"]) == (200, "too_old")


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# Documented field names, so the fuzz reaches past "missing field" into the values.
FIELDS = st.sampled_from(
    [
        "plate",
        "time",
        "confidence",
        "region",
        "License Plate",
        "plateUTF8",
        "datetime",
        "carID",
        "plateConfidence",
        "data_type",
        "best_plate_number",
        "epoch_start",
        "results",
        "data",
        "Picture",
        "ANPR",
        "eventType",
        "dateTime",
        "licensePlate",
        "capture_timestamp",
    ]
)
BODIES = st.dictionaries(FIELDS, JUNK, max_size=6).map(
    lambda d: msgspec.json.encode(d)
) | st.binary(max_size=200)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES)
async def test_never_500(cams: Cameras, body: bytes) -> None:
    for vendor in ("hikvision", "axis", "milesight", "platerecognizer", "rekor", "dahua"):
        status, reply = await cams.post(f"/v1/cameras/{vendor}", body, {**key(vendor), **JSON})
        assert status in (200, 400, 413, 422), (vendor, body, reply)
