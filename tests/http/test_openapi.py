"""The OpenAPI document and /docs/plain list the admin API exactly when the service installs it."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from varco import admin

ADMIN_BODIES = {
    ("/v1/permits", "post"): "PermitIn",
    ("/v1/permits/{permit_id}", "patch"): "PermitPatch",
    ("/v1/permits/{permit_id}/revoke", "post"): "RevokeIn",
    ("/v1/permits/{permit_id}/renew", "post"): "RenewIn",
}


async def documents(app: web.Application) -> tuple[dict[str, Any], str]:
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        r = await client.get("/openapi.json")
        assert r.status == 200
        doc = await r.json()
        r = await client.get("/docs/plain")
        assert r.status == 200
        return doc, await r.text()


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


async def test_admin_api_documented_when_installed(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    doc, page = await documents(create_app(settings, rules, watch=False, extend=admin.install))
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    assert set(paths["/v1/permits/{permit_id}"]) == {"get", "patch"}
    bodies = {
        (path, method): op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, ops in paths.items()
        for method, op in ops.items()
        if path.startswith("/v1/permits")
        if "requestBody" in op
    }
    assert bodies == {k: f"#/components/schemas/{v}" for k, v in ADMIN_BODIES.items()}
    assert schemas["PermitIn"]["required"] == ["permit_id", "type", "valid_from", "plates"]
    assert schemas["RevokeIn"]["required"] == ["reason"]
    assert schemas["PermitPatch"].get("required", []) == []  # every field optional
    issue = paths["/v1/permits"]["post"]
    assert issue["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PermitOut"
    }
    assert {"401", "403", "409", "415", "422"} <= set(issue["responses"])
    assert "404" in paths["/v1/permits/{permit_id}/revoke"]["post"]["responses"]
    assert "past" in issue["description"]
    # every reference resolves, the service's own and the admin's (ErrorOut is shared)
    assert {r.rsplit("/", 1)[1] for r in refs(doc)} <= set(schemas)
    assert "/v1/transits" in paths and "TransitIn" in schemas
    assert "POST /v1/permits/{permit_id}/renew" in page and "PermitPatch" in page
    # sign-in comes with the admin API (both read the permit database)
    assert set(paths["/v1/session"]) == {"post", "get", "delete"}
    assert schemas["SessionIn"]["required"] == ["username", "password"]
    assert {"401", "429"} <= set(paths["/v1/session"]["post"]["responses"])
    assert "ChangeOut" in schemas and "changes" in schemas["PermitOut"]["properties"]


async def test_no_admin_api_without_the_extension(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    doc, page = await documents(create_app(settings, rules, watch=False))
    assert not [p for p in doc["paths"] if p.startswith(("/v1/permits", "/v1/session"))]
    assert not {"PermitIn", "PermitPatch", "RevokeIn", "RenewIn", "PermitOut"} & set(
        doc["components"]["schemas"]
    )
    assert "/v1/permits" not in page and "/v1/transits" in page


async def test_the_description_is_as_strict_as_the_service(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    doc, _ = await documents(create_app(settings, rules, watch=False, extend=admin.install))
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    transit = schemas["TransitIn"]["properties"]
    assert transit["gate"]["enum"] == ["PD-01", "PD-02", "PD-03"]  # the configuration's
    assert transit["camera"]["pattern"].startswith("^[A-Za-z0-9]")  # the demo: any plain id
    lookup = {p["name"]: p for p in paths["/v1/plates/{plate}"]["get"]["parameters"]}
    assert lookup["plate"]["schema"]["pattern"] and lookup["at"]["schema"]["minLength"] == 1
    assert lookup["zone"]["schema"]["enum"] == ["ZTL", "PEDONALE"]
    for path, ops in paths.items():
        for method, op in ops.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", path)), (method, path)
            if method == "get":
                assert not {"413", "415"} & set(op["responses"]), path
    export = paths["/v1/violations"]["get"]["responses"]["200"]
    assert set(export["content"]) == {"application/json", "text/csv"}
    hik = paths["/v1/cameras/hikvision"]["post"]["requestBody"]["content"]
    assert set(hik) == {"application/xml", "application/json", "multipart/form-data"}
    assert hik["application/json"]["schema"] == {"$ref": "#/components/schemas/HikvisionBody"}
    assert "licensePlate" in schemas["Hikvision_Anpr"]["properties"]
    assert "Picture" in schemas["Dahua_Message"]["properties"]


async def test_overload_and_rate_limit_answers_are_documented(
    demo: tuple[Settings, Rules],
) -> None:
    """admission.py answers 503 `overloaded` on every route but health, readiness and
    metrics; ratelimit.py 429 on those that take a key, when a rate is configured."""
    settings, rules = demo
    for rate in (0.0, 5.0):
        limited = with_changes(settings, server={"key_rate": rate})
        doc, _ = await documents(create_app(limited, rules, watch=False, extend=admin.install))
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                responses = op["responses"]
                if path in ("/healthz", "/readyz", "/metrics"):
                    assert "overloaded" not in str(responses.get("503", "")), path
                    continue
                assert "overloaded" in responses["503"]["description"], (method, path)
                assert "Retry-After" in responses["503"]["headers"], (method, path)
                keyed = any("bearer" in s for s in op.get("security", ()))
                limited = "rate_limited" in str(responses.get("429", ""))
                assert limited == (rate > 0 and keyed), (method, path)


async def test_outside_the_demo_a_transit_names_a_registered_camera(
    demo: tuple[Settings, Rules],
) -> None:
    settings, rules = demo
    settings = with_changes(settings, demo=False)
    doc, _ = await documents(create_app(settings, rules, watch=False))
    camera = doc["components"]["schemas"]["TransitIn"]["properties"]["camera"]
    assert camera["enum"] == sorted(settings.cameras) and "cam-native" in camera["enum"]
