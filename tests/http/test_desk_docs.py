"""The desk's endpoints in the OpenAPI document: paths, parameters, bodies, references."""

from __future__ import annotations

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.app import create_app

from ..support.desk import openapi, schema_refs


async def test_desk_endpoints_are_documented(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    doc, page = await openapi(create_app(settings, rules, watch=False))
    paths, schemas = doc["paths"], doc["components"]["schemas"]
    assert set(paths["/v1/review"]) == {"get"}
    assert set(paths["/v1/review/{transit_id}"]) == {"post"}
    assert set(paths["/v1/transits/search"]) == {"get"}
    assert set(paths["/v1/cameras/health"]) == {"get"}
    listing = {p["name"] for p in paths["/v1/review"]["get"]["parameters"]}
    assert listing == {"gate", "camera", "reason", "since", "until", "limit", "cursor"}
    search = {(p["name"], p["in"]) for p in paths["/v1/transits/search"]["get"]["parameters"]}
    assert {("plate", "query"), ("day", "query"), ("X-Reason", "header")} <= search
    decide = paths["/v1/review/{transit_id}"]["post"]
    assert {"200", "404", "409", "422"} <= set(decide["responses"])
    assert schemas["DecisionIn"]["required"] == ["decision", "reason"]
    assert set(schemas["DecisionIn"]["properties"]["decision"]["enum"]) == {
        "confirm",
        "dismiss",
        "correct",
    }
    assert {"evidence", "alternatives", "kept", "raw_plate"} <= set(
        schemas["ReviewOut"]["properties"]
    )
    assert "alarm" in schemas["CameraStatus"]["properties"]
    assert {r.rsplit("/", 1)[1] for r in schema_refs(doc)} <= set(schemas)
    assert "/v1/transits/search" in page
