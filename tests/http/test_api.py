"""The HTTP API through a real server on loopback: verdicts, roles, errors, hot swaps."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.app import create_app

from ..support.api import ADMIN, CAMERA, NOW, POLICE, Client, ServiceServer, transit, wait_ready
from ..support.common import permit, publish_permits

LOOKUP = {**POLICE, "X-Reason": "test: police view"}  # every police lookup gives a reason


async def test_transit_verdicts(api: Client) -> None:
    status, body, r = await api.request(
        "POST", "/v1/transits", CAMERA, json=transit("AB123CD", event_id="e-AB123CD")
    )
    assert status == 200 and r.content_type == "application/json"
    assert re.fullmatch(r"[0-9a-f]{24}", body.pop("transit_id"))
    assert body == {
        "verdict": "allowed",
        "reason": "permit",
        "plate": "AB123CD",
        "permits": ["RES-1"],
        "index_revision": 2,
        "event_id": "e-AB123CD",
    }
    status, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ"))
    assert (body["verdict"], body["reason"]) == ("pending", "no_permit")
    grace = dt.datetime.fromisoformat(body["grace_until"])
    assert grace - NOW == dt.timedelta(hours=72)
    _, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=transit("unknown"))
    assert (body["verdict"], body["reason"], body["plate"]) == ("review", "unreadable", "")
    _, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=transit("FA002CU"))
    assert (body["verdict"], body["reason"]) == ("pending", "not_primary_plate")
    # The most recent Sunday noon, local time: PD-01 rests on Sundays.
    local = NOW.astimezone(ZoneInfo("Europe/Rome"))
    last_sunday = (local - dt.timedelta(days=(local.weekday() + 1) % 7 or 7)).replace(
        hour=12, minute=0, second=0
    )
    sunday = transit("ZZ999ZZ", gate="PD-01", ts=last_sunday.isoformat())
    _, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=sunday)
    assert (body["verdict"], body["reason"]) == ("not_enforced", "gate_inactive")


async def test_a_body_arriving_after_its_headers_is_judged_the_same(api: Client) -> None:
    """A whole body is taken without an await (the fast path); one still on its way, or
    chunked, is read to its end: both give the verdict a whole body gets."""
    whole = await api.request("POST", "/v1/transits", CAMERA, json=transit("AB123CD"))
    assert whole[1]["verdict"] == "allowed"
    url = api.base.removeprefix("http://")
    host, port = url.split(":")
    for chunked in (False, True):
        body = json.dumps(transit("AB123CD")).encode()
        framing = (
            b"Transfer-Encoding: chunked\r\n" if chunked else b"Content-Length: %d\r\n" % len(body)
        )
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            b"POST /v1/transits HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Authorization: Bearer demo-camera\r\n"
            b"Content-Type: application/json\r\n" + framing + b"\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.05)  # the handler starts before the body is in
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            await writer.drain()
            await asyncio.sleep(0.02)
        if chunked:
            writer.write(b"0\r\n\r\n")
        reply = await reader.read()
        writer.close()
        head, _, payload = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), reply
        got = json.loads(payload)
        assert (got["verdict"], got["reason"], got["permits"]) == ("allowed", "permit", ["RES-1"])


async def test_batch_matches_single(api: Client) -> None:
    plates = ["AB123CD", "ZZ999ZZ", "unknown", "FA001CU", "FA002CU", "AB123CO", "a b 1 2 3 c d"]
    items = [transit(p, event_id=f"b{i}") for i, p in enumerate(plates)]
    status, body, _ = await api.request(
        "POST", "/v1/transits/batch", ADMIN, json={"transits": items}
    )
    assert status == 200
    singles = [(await api.request("POST", "/v1/transits", CAMERA, json=it))[1] for it in items]
    assert body["results"] == singles
    too_many = {"transits": [transit("AB123CD")] * 1001}
    status, body, _ = await api.request("POST", "/v1/transits/batch", CAMERA, json=too_many)
    assert (status, body["error"], body["field"]) == (413, "too_large", "transits")
    bad_gate = {"transits": [transit("AB123CD"), transit("AB123CD", gate="NOPE")]}
    status, body, _ = await api.request("POST", "/v1/transits/batch", CAMERA, json=bad_gate)
    assert (status, body["field"]) == (422, "transits[1].gate")


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/v1/transits", CAMERA, 200),
        ("POST", "/v1/transits", ADMIN, 200),
        ("POST", "/v1/transits", POLICE, 403),
        ("POST", "/v1/transits", None, 401),
        ("POST", "/v1/transits", {"Authorization": "Bearer nope"}, 401),
        ("POST", "/v1/transits", {"Authorization": "demo-camera"}, 401),
        ("GET", "/v1/plates/AB123CD?reason=roles", POLICE, 200),
        ("GET", "/v1/plates/AB123CD?reason=roles", ADMIN, 200),
        ("GET", "/v1/plates/AB123CD", CAMERA, 403),
        ("GET", "/v1/plates/AB123CD", None, 401),
    ],
)
async def test_roles(
    api: Client, method: str, path: str, headers: dict[str, str] | None, status: int
) -> None:
    got, body, r = await api.request(
        method, path, headers, json=transit("AB123CD") if method == "POST" else None
    )
    assert got == status
    if status == 401:
        assert body["error"] == "unauthorized" and r.headers["WWW-Authenticate"] == "Bearer"
    if status == 403:
        assert body["error"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error", "field"),
    [
        (b"{not json", "application/json", 400, "malformed_json", None),
        (b'{"a": 1}', "text/plain", 415, "unsupported_media_type", None),
        (
            json.dumps(transit("AB123CD", colour="red")).encode(),
            "application/json",
            422,
            "invalid",
            "colour",
        ),
        (
            json.dumps({k: v for k, v in transit("AB").items() if k != "gate"}).encode(),
            "application/json",
            422,
            "invalid",
            "gate",
        ),
        (
            json.dumps(transit("AB", ts="2026-11-22T10:00:00")).encode(),
            "application/json",
            422,
            "invalid",
            "ts",
        ),
        (
            json.dumps(transit("AB", ts="yesterday")).encode(),
            "application/json",
            422,
            "invalid",
            "ts",
        ),
        (
            json.dumps(transit("AB", confidence=1.5)).encode(),
            "application/json",
            422,
            "invalid",
            "confidence",
        ),
        (
            json.dumps(transit("AB", gate="NOPE")).encode(),
            "application/json",
            422,
            "invalid",
            "gate",
        ),
        (
            json.dumps(transit("AB", event_id="")).encode(),
            "application/json",
            422,
            "invalid",
            "event_id",
        ),
        (
            json.dumps({**transit("AB"), "plate": 5}).encode(),
            "application/json",
            422,
            "invalid",
            "plate",
        ),
        (b"[]", "application/json", 422, "invalid", None),
        (b"x" * (300 * 1024), "application/json", 413, "too_large", None),
    ],
)
async def test_bad_input(
    api: Client, body: bytes, content_type: str, status: int, error: str, field: str | None
) -> None:
    headers = {**CAMERA, "Content-Type": content_type}
    got, reply, _ = await api.request("POST", "/v1/transits", headers, data=body)
    assert (got, reply["error"]) == (status, error)
    assert reply["detail"]
    if field is not None:
        assert reply["field"] == field
    if "gate" not in json.dumps(reply) and error == "invalid" and field is None:
        assert "gate" in reply["detail"] or "Expected" in reply["detail"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.binary(max_size=300)
    | st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=10,
    ).map(lambda v: json.dumps(v).encode())
)
async def test_never_500(api: Client, body: bytes) -> None:
    for path in ("/v1/transits", "/v1/transits/batch"):
        status, reply, _ = await api.request(
            "POST", path, {**ADMIN, "Content-Type": "application/json"}, data=body
        )
        assert status in (400, 413, 422), (body, reply)
        assert reply["error"] in ("malformed_json", "invalid", "too_large")


async def test_police_view(api: Client) -> None:
    at = "2026-11-22T12:00:00+01:00"
    status, body, _ = await api.request(
        "GET", f"/v1/plates/fa002cu?at={at.replace('+', '%2B')}", LOOKUP
    )
    assert status == 200
    assert body["plate"] == "FA002CU"
    [p] = body["permits"]
    assert (p["permit_id"], p["type"], p["primary"], p["source"], p["status"]) == (
        "CUDE-1",
        "CUDE",
        False,
        "cude",
        "valid",
    )
    assert p["zones"] == ["ZTL", "PEDONALE"]
    assert {z["zone"]: (z["verdict"], z["reason"]) for z in body["zones"]} == {
        "ZTL": ("not_allowed", "not_primary_plate"),
        "PEDONALE": ("not_allowed", "not_primary_plate"),
    }
    status, body, _ = await api.request("GET", "/v1/plates/AB123C0?zone=ZTL", LOOKUP)
    assert [n["plate"] for n in body["near_matches"]] == ["AB123CD"]
    assert [z["zone"] for z in body["zones"]] == ["ZTL"]
    for query, field in (
        ("at=tomorrow", "at"),
        ("at=2026-11-22T12:00:00", "at"),
        ("at=", "at"),  # empty is no instant (it was taken as now)
        ("at=20261122T120000%2B0100", "at"),  # ISO 8601, not RFC 3339
        ("at=2026-11-22T12%2B01:00", "at"),
        ("zone=", "zone"),
        ("at=1970-01-01T00:00:00%2B00:00", "at"),
        ("zone=NOWHERE", "zone"),
        ("colour=red", "colour"),
    ):
        status, body, _ = await api.request("GET", f"/v1/plates/AB123CD?{query}", LOOKUP)
        assert (status, body["field"]) == (422, field)
    # The path parameter's pattern: letters and digits, spaces, dots and dashes between them;
    # a letter normalise cannot fold to Latin (Cyrillic Zhe) is refused like a symbol.
    for plate in ("%23%23", "AB%C2%B7123", "%D0%96B123CD", "AB123CD%2F", "-", "A" * 12, "na"):
        status, body, _ = await api.request("GET", f"/v1/plates/{plate}", LOOKUP)
        assert (status, body["field"]) == (422, "plate"), plate
    status, body, _ = await api.request("GET", "/v1/plates/ab.123-cd%20", LOOKUP)
    assert (status, body["plate"]) == (200, "AB123CD")
    # As typed from a foreign plate or a look-alike keyboard: folded as camera reads are.
    for typed, plate in (("%D0%90B123CD", "AB123CD"), ("M%C3%9C-AB123", "MUAB123")):
        status, body, _ = await api.request("GET", f"/v1/plates/{typed}", LOOKUP)
        assert (status, body["plate"]) == (200, plate), typed


async def test_operations_endpoints(api: Client) -> None:
    assert (await api.request("GET", "/healthz"))[0] == 200
    ready = await wait_ready(api)
    assert (
        ready["index_revision"] == 2
        and ready["permits"] == 2
        and ready["lookup_kernel"] in ("c", "python")
    )
    await api.request("POST", "/v1/transits", CAMERA, json=transit("ZZ999ZZ"))
    _, metrics, _ = await api.request("GET", "/metrics")
    assert 'varco_transits_total{verdict="pending",reason="no_permit"}' in metrics
    assert "varco_index_revision 2" in metrics
    assert "ZZ999ZZ" not in metrics and "demo-camera" not in metrics  # privacy
    _, doc, _ = await api.request("GET", "/openapi.json")
    assert {"/v1/transits", "/v1/transits/batch", "/v1/plates/{plate}"} <= set(doc["paths"])
    assert "TransitIn" in doc["components"]["schemas"]
    status, page, r = await api.request("GET", "/docs/plain")
    assert status == 200 and r.content_type == "text/html" and "/v1/transits" in page
    status, page, r = await api.request("GET", "/docs")  # Swagger UI (tests/http/test_apidocs.py)
    assert status == 200 and r.content_type == "text/html" and "swagger-ui" in page
    status, body, _ = await api.request("GET", "/nowhere")
    assert (status, body["error"]) == (404, "not_found")
    status, body, _ = await api.request("GET", "/v1/transits", CAMERA)
    assert (status, body["error"]) == (405, "method_not_allowed")


async def test_hot_swap_and_refusal(api: Client) -> None:
    settings, rules = api.settings, api.rules  # type: ignore[attr-defined]
    stop = asyncio.Event()
    failures: list[Any] = []
    answered = 0

    async def traffic() -> None:
        nonlocal answered
        while not stop.is_set():
            status, body, _ = await api.request(
                "POST", "/v1/transits", CAMERA, json=transit("AB123CD")
            )
            if status != 200 or body["verdict"] != "allowed":
                failures.append((status, body))
            answered += 1

    workers = [asyncio.create_task(traffic()) for _ in range(4)]
    try:
        for i in range(3):  # three good swaps under load
            plate = f"NW{i}00NW"
            await asyncio.to_thread(
                publish_permits,
                settings,
                rules,
                [permit(f"NEW-{i}", plate, "1", "2020-01-01T00:00:00+01:00")],
            )
            await wait_ready(api, revision=3 + i)
            _, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=transit(plate))
            assert body["verdict"] == "allowed"
        # A damaged snapshot made current: refused, the last good index keeps serving.
        good = (settings.storage.snapshot_dir / "current.vidx").resolve()
        bad = settings.storage.snapshot_dir / "index-r000000000099-bad.vidx"
        data = bytearray(good.read_bytes())
        data[len(data) // 2] ^= 0xFF
        bad.write_bytes(bytes(data))
        link = settings.storage.snapshot_dir / ".bad-link"
        link.symlink_to(bad.name)
        os.replace(link, settings.storage.snapshot_dir / "current.vidx")
        for _ in range(200):
            status, ready, _ = await api.request("GET", "/readyz")
            if ready["snapshot_rejected"] >= 1:
                break
            await asyncio.sleep(0.05)
        assert ready["snapshot_rejected"] >= 1 and "checksum" in ready["last_error"]
        assert ready["index_revision"] == 5 and status == 200
        _, body, _ = await api.request("POST", "/v1/transits", CAMERA, json=transit("NW200NW"))
        assert body["verdict"] == "allowed"
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert failures == []
    assert answered > 20


async def test_not_ready_without_snapshot(demo: tuple[Settings, Rules], tmp_path: Path) -> None:
    settings, rules = demo
    server = ServiceServer(create_app(settings, rules))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, str(server.make_url("")).rstrip("/"))
            status, body, _ = await client.request("GET", "/readyz")
            assert (status, body["ready"]) == (503, False)
            status, body, _ = await client.request(
                "POST", "/v1/transits", CAMERA, json=transit("AB123CD")
            )
            assert (status, body["error"]) == (503, "not_ready")
    finally:
        await server.close()
