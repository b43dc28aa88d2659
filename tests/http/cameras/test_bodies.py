"""Hostile and compressed bodies on every route that reads one: compression undone only after
authentication and never past the cap, structural caps (JSON depth, multipart parts, XML
elements) answered 4xx, never 500, and quickly enough that no other client waits."""

from __future__ import annotations

import functools
import json
import time
import zlib
from typing import Any

import pytest

from ...support import payloads as p
from ...support.cameras import AT, JSON, MAX_CAMERA_BODY, PERMITTED, XML, Cameras, form, key

NATIVE = {"Authorization": "Bearer demo-camera", **JSON}


@functools.cache
def gzip_bomb() -> bytes:
    """128 MiB of zeros in ~130 kB of gzip: 128 times the test service's camera body cap."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join(z.compress(block) for _ in range(128)) + z.flush()


def gzip(data: bytes) -> bytes:
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    return z.compress(data) + z.flush()


def cpu_of(start: float) -> float:
    """CPU seconds this process (client and server alike) spent since `start`."""
    return time.process_time() - start


def native_body() -> bytes:
    return json.dumps(
        {
            "event_id": f"gz-{time.monotonic_ns()}",
            "camera": "cam-1",
            "gate": "PD-03",
            "plate": PERMITTED,
            "ts": AT.isoformat(),
            "confidence": 0.9,
        }
    ).encode()


# -- compression ------------------------------------------------------------------------------


@pytest.mark.parametrize("authorised", [False, True])
async def test_a_gzip_bomb_is_never_inflated_whole(cams: Cameras, authorised: bool) -> None:
    """Without a key: 401 before a byte is inflated. With one: inflated up to the cap, 413.
    Inflating all of it would cost this process ~0.3 s of CPU; the refusal costs a few ms."""
    bomb = gzip_bomb()
    headers = {"Content-Encoding": "gzip", **JSON, **(key("rekor") if authorised else {})}
    start = time.process_time()
    status, body = await cams.post("/v1/cameras/rekor", bomb, headers)
    assert cpu_of(start) < 0.15
    assert status == (413 if authorised else 401), body
    if authorised:
        assert "decompressed" in body["detail"]


async def test_a_gzip_bomb_on_the_native_route_is_refused(cams: Cameras) -> None:
    start = time.process_time()
    status, body = await cams.post(
        "/v1/transits", gzip_bomb(), {"Content-Encoding": "gzip", **NATIVE}
    )
    assert cpu_of(start) < 0.15
    assert status == 413, body


def _vendor_posts() -> list[tuple[str, bytes, dict[str, str]]]:
    return [
        ("/v1/cameras/rekor", p.dump(p.rekor_group(PERMITTED, AT)), JSON),
        ("/v1/cameras/milesight", p.dump(p.milesight(PERMITTED, AT)), JSON),
        ("/v1/cameras/dahua", p.dump(p.dahua(PERMITTED, AT)), JSON),
        ("/NotificationInfo/TollgateInfo", p.dump(p.dahua(PERMITTED, AT)), JSON),
        ("/v1/cameras/axis", p.dump(p.axis_event(PERMITTED, AT)), JSON),
        ("/v1/cameras/hikvision", p.hikvision_xml(PERMITTED, AT), XML),
        (
            "/v1/cameras/platerecognizer",
            p.dump(p.platerecognizer_stream([(PERMITTED, 0.9)], AT)),
            JSON,
        ),
    ]


@pytest.mark.parametrize(("path", "body", "ctype"), _vendor_posts())
async def test_a_gzip_encoded_vendor_post_is_judged_whole(
    cams: Cameras, path: str, body: bytes, ctype: dict[str, str]
) -> None:
    """It used to be cut to its compressed length and refused (400)."""
    vendor = "dahua" if "Tollgate" in path else path.split("/")[3]
    headers = {**ctype, **key(vendor), "Content-Encoding": "gzip"}
    status, reply = await cams.post(path, gzip(body), headers)
    assert status == 200, reply
    assert [r["verdict"] for r in reply["results"]] == ["allowed"]


async def test_a_gzip_encoded_multipart_post_is_judged(cams: Cameras) -> None:
    data = form(
        ("event", p.dump(p.axis_event(PERMITTED, AT)).decode(), "application/json", None),
        ("image", p.JPEG, "image/jpeg", "plate.jpg"),
    )
    payload = data()
    raw = b"".join([bytes(chunk) for chunk in [await _bytes_of(payload)]])
    headers = {
        "Content-Type": payload.content_type,
        "Content-Encoding": "gzip",
        **key("axis"),
    }
    status, reply = await cams.post("/v1/cameras/axis", gzip(raw), headers)
    assert status == 200, reply
    assert [r["verdict"] for r in reply["results"]] == ["allowed"]


async def _bytes_of(payload: Any) -> bytes:
    chunks: list[bytes] = []

    class Sink:
        async def write(self, data: bytes) -> None:
            chunks.append(bytes(data))

    await payload.write(Sink())
    return b"".join(chunks)


@pytest.mark.parametrize("wbits", [15, -15], ids=["zlib", "raw"])
async def test_a_deflate_encoded_native_post_is_judged(cams: Cameras, wbits: int) -> None:
    z = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = z.compress(native_body()) + z.flush()
    status, reply = await cams.post("/v1/transits", body, {"Content-Encoding": "deflate", **NATIVE})
    assert status == 200, reply
    assert reply["verdict"] == "allowed"


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        ("br", b"\x0b\x02\x80{}\x03", 415),
        ("gzip, gzip", b"", 415),
        ("gzip", b"\x1f\x8b\x08\x00not gzip at all", 400),
        ("gzip", b"", 400),  # no gzip member at all
    ],
)
async def test_bodies_that_cannot_be_decompressed(
    cams: Cameras, encoding: str, body: bytes, status: int
) -> None:
    for path, headers in (("/v1/cameras/rekor", key("rekor")), ("/v1/transits", NATIVE)):
        got, reply = await cams.post(path, body, {**headers, "Content-Encoding": encoding})
        assert got == status, (path, reply)


async def test_a_truncated_gzip_body_is_refused(cams: Cameras) -> None:
    body = gzip(native_body())
    status, reply = await cams.post(
        "/v1/transits", body[:-12], {"Content-Encoding": "gzip", **NATIVE}
    )
    assert status == 400, reply


# -- structural caps --------------------------------------------------------------------------

DEEP = b'{"a":' * 5000 + b"1" + b"}" * 5000


@pytest.mark.parametrize(
    ("path", "vendor"),
    [
        ("/v1/cameras/rekor", "rekor"),
        ("/v1/cameras/milesight", "milesight"),
        ("/v1/cameras/dahua", "dahua"),
        ("/NotificationInfo/TollgateInfo", "dahua"),
        ("/v1/cameras/axis", "axis"),
        ("/v1/cameras/hikvision", "hikvision"),
        ("/v1/cameras/platerecognizer", "platerecognizer"),
    ],
)
async def test_json_nested_deep_is_a_400_not_a_500(cams: Cameras, path: str, vendor: str) -> None:
    for body in (DEEP, b"[" * 5000 + b"]" * 5000, b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
        status, reply = await cams.post(path, body, {**JSON, **key(vendor)})
        assert 400 <= status < 500, (path, reply)


async def test_json_nested_deep_on_the_native_routes(cams: Cameras) -> None:
    for path in ("/v1/transits", "/v1/transits/batch"):
        for body in (DEEP, b'{"transits": ' + b"[" * 5000 + b"]" * 5000 + b"}"):
            status, reply = await cams.post(path, body, NATIVE)
            assert 400 <= status < 500, (path, reply)


BOUNDARY = "varco-test"


def multipart(*parts: bytes) -> tuple[bytes, dict[str, str]]:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    body += b"--" + BOUNDARY.encode() + b"--\r\n"
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.mark.parametrize("vendor", ["hikvision", "axis", "platerecognizer"])
async def test_a_part_with_malformed_headers_is_a_400(cams: Cameras, vendor: str) -> None:
    for part in (
        b'Content-Disposition: form-data; name="x"\r\nNot A Header\r\n\r\nhello',
        b'Content-Disposition: form-data; name="x"\r\nX: \x00\x01\r\n\r\nhello',
    ):
        body, headers = multipart(part)
        status, reply = await cams.post(f"/v1/cameras/{vendor}", body, {**headers, **key(vendor)})
        assert status == 400, reply
        assert reply["error"] == "malformed_body"


@pytest.mark.parametrize("vendor", ["hikvision", "axis", "platerecognizer"])
async def test_a_malformed_content_disposition_is_a_client_error(
    cams: Cameras, vendor: str
) -> None:
    """aiohttp warns of it (with the header's text); the part is read nameless and the post
    answered 4xx, never 500, whatever the warning filters (pytest's turn warnings into
    errors)."""
    for disposition in (b"Content-Disposition: ;;;", b'Content-Disposition: form-data; name="x'):
        body, headers = multipart(disposition + b"\r\n\r\nhello")
        status, reply = await cams.post(f"/v1/cameras/{vendor}", body, {**headers, **key(vendor)})
        assert 400 <= status < 500, reply


async def test_many_tiny_parts_are_refused_early(cams: Cameras) -> None:
    part = b'Content-Disposition: form-data; name="p"\r\n\r\nx'
    body, headers = multipart(*[part] * 15_000)
    assert len(body) < MAX_CAMERA_BODY
    start = time.process_time()
    status, reply = await cams.post("/v1/cameras/axis", body, {**headers, **key("axis")})
    assert cpu_of(start) < 0.25
    assert status == 413, reply
    assert "parts" in reply["detail"]


async def test_xml_of_a_hundred_thousand_elements_is_refused_early(cams: Cameras) -> None:
    body = b"<EventNotificationAlert>" + b"<b/>" * 100_000 + b"</EventNotificationAlert>"
    assert len(body) < MAX_CAMERA_BODY
    start = time.process_time()
    status, reply = await cams.post("/v1/cameras/hikvision", body, {**XML, **key("hikvision")})
    assert cpu_of(start) < 0.25
    assert status == 413, reply
    assert "elements" in reply["detail"]
