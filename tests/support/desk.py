"""The desk as its tests use it: the follow-up's world (followup.py) with an operator key and a
camera at a gate with operating hours; review items made the way the follow-up makes them; the
audit records a service without an audit Redis writes to its file."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from enforcement.audit.writer import audit_file
from enforcement.config.settings import ApiKey, Camera, Settings, hash_key, with_changes

from .api import Client, ServiceServer
from .followup import World

OPERATOR = {"Authorization": "Bearer demo-operator"}
REASON = {"X-Reason": "ricorso 12/2026"}
SCHEDULED_CAMERA = "cam-via-roma"  # at PD-01: Mon-Sat 08:00-20:00, inactive on holidays


def desk_settings(settings: Settings) -> Settings:
    """The demo's settings with an operator key and a native camera at PD-01."""
    keys = dict(settings.api_keys)
    keys[hash_key("demo-operator")] = ApiKey("demo-operator", "operator")
    cameras = dict(settings.cameras)
    cameras[SCHEDULED_CAMERA] = Camera(SCHEDULED_CAMERA, "PD-01", "native", "Europe/Rome")
    return with_changes(settings, api_keys=keys, cameras=cameras)


async def queued(world: World, plate: str, **extra: Any) -> dict[str, Any]:
    """Post a transit the follow-up sends to the review queue (low confidence unless told),
    and let the follow-up take it."""
    extra.setdefault("confidence", 0.3)
    body = await world.post(plate, **extra)
    assert body["verdict"] == "review", body
    await world.run_followup()
    return body


async def review(client: Client, headers: dict[str, str] = OPERATOR, **query: str) -> Any:
    status, body, _ = await client.request("GET", "/v1/review", headers, params=query)
    assert status == 200, body
    return body


async def decide(
    client: Client,
    transit_id: str,
    decision: str,
    reason: str | None = "verbale 7/2026",
    headers: dict[str, str] = OPERATOR,
    **extra: Any,
) -> tuple[int, Any]:
    body: dict[str, Any] = {"decision": decision, **extra}
    if reason is not None:
        body["reason"] = reason
    status, out, _ = await client.request("POST", f"/v1/review/{transit_id}", headers, json=body)
    return status, out


async def search(
    client: Client, headers: dict[str, str] | None = None, **query: str
) -> tuple[int, Any]:
    status, body, _ = await client.request(
        "GET",
        "/v1/transits/search",
        {**OPERATOR, **REASON} if headers is None else headers,
        params=query,
    )
    return status, body


def audit_records(settings: Settings) -> list[dict[str, Any]]:
    """The records of the file audit trail (a service without an audit Redis), in order."""
    path = audit_file(settings.storage.data_dir)
    if not path.exists():
        return []
    return [json.loads(line.split(b"\t", 4)[4]) for line in path.read_bytes().splitlines()]


async def openapi(app: Any) -> tuple[dict[str, Any], str]:
    """`/openapi.json` and `/docs/plain` (the plain list) of `app`, served on loopback."""
    server = ServiceServer(app)
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = Client(session, str(server.make_url("")).rstrip("/"))
            status, doc, _ = await client.request("GET", "/openapi.json")
            assert status == 200
            status, page, _ = await client.request("GET", "/docs/plain")
            assert status == 200
            return doc, page
    finally:
        await server.close()


def schema_refs(node: Any) -> set[str]:
    """Every `$ref` in a document."""
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(schema_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(schema_refs(v) for v in node))
    return set()
