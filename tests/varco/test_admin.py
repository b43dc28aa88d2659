"""The admin API through a real server: issue, read, change, revoke, renew; roles; errors.
Each write is enforced by the same server within a second, through Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from loader.watch import LoaderThread
from varco import admin

from ..support.api import (
    ADMIN,
    CAMERA,
    NOW,
    PERMITS,
    POLICE,
    Client,
    ServiceServer,
    ready,
    transit,
    upsert,
)
from ..support.common import eventually

PLATE = "HK321LM"


@pytest.fixture
async def server(
    live_settings: Settings, demo: tuple[Settings, Rules], loader: LoaderThread
) -> AsyncIterator[Client]:
    base = upsert(live_settings, *PERMITS)
    app = create_app(
        live_settings, demo[1], redis_url=live_settings.redis.url, extend=admin.install
    )
    test_server = ServiceServer(app)
    await test_server.start_server()
    async with aiohttp.ClientSession() as session:
        client = Client(session, str(test_server.make_url("")))
        await eventually(lambda: ready(client, base))
        yield client
    await test_server.close()


def iso(delta_h: float) -> str:
    return (NOW + dt.timedelta(hours=delta_h)).isoformat()


def issue_body(**over: Any) -> dict[str, Any]:
    body = {
        "permit_id": "ONL-1",
        "type": "ONLINE",
        "valid_from": iso(-1),
        "valid_to": iso(0.5),
        "plates": [{"plate": PLATE}],
        "source": "online",
    }
    body.update(over)
    return body


async def verdict_of(client: Client, plate: str = PLATE) -> dict[str, Any]:
    status, body, _ = await client.request("POST", "/v1/transits", CAMERA, json=transit(plate))
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def test_an_early_renewal_keeps_the_running_period(server: Client) -> None:
    """A resident renews four months before expiry: the new period follows the running one,
    which stays enforceable until it ends (the renewal used to replace it: pending today)."""
    body = issue_body(
        permit_id="RES-7", type="2", valid_from=iso(-24 * 300), valid_to=iso(24 * 120)
    )
    body["source"] = "municipal"
    status, out, _ = await server.request("POST", "/v1/permits", ADMIN, json=body)
    assert status == 201, out
    status, out, _ = await server.request(
        "POST", "/v1/permits/RES-7/renew", ADMIN, json={"valid_to": iso(24 * 485)}
    )
    assert status == 200, out

    def instant(text: str) -> float:
        return dt.datetime.fromisoformat(text).timestamp()

    old_end = instant(body["valid_to"])
    assert [(instant(p["valid_from"]), instant(p["valid_to"])) for p in out["periods"]] == [
        (instant(body["valid_from"]), old_end),
        (old_end, instant(iso(24 * 485))),
    ]

    async def allowed() -> bool:
        v = await verdict_of(server)
        return (v["verdict"], v.get("permits")) == ("allowed", ["RES-7"])

    await eventually(allowed, timeout_s=2)
    # A revocation ends both: the running period now, the coming one before it begins.
    status, out, _ = await server.request(
        "POST", "/v1/permits/RES-7/revoke", ADMIN, json={"reason": "moved away", "at": iso(-1)}
    )
    assert status == 200 and len(out["periods"]) == 1, out
    assert instant(out["valid_to"]) == instant(iso(-1)) == instant(out["periods"][0]["valid_to"])
    status, out, _ = await server.request("GET", "/v1/permits/RES-7", ADMIN)
    assert [len(h["periods"]) for h in out["history"]] == [1, 2]  # issued, renewed


async def test_permit_lifecycle(server: Client) -> None:
    assert (await verdict_of(server))["verdict"] == "pending"
    status, body, _ = await server.request("POST", "/v1/permits", ADMIN, json=issue_body())
    assert status == 201, body
    assert body["plates"] == [{"plate": PLATE, "primary": True}] and body["revision"] > 0

    async def verdict_is(want: tuple[str, str]) -> bool:
        v = await verdict_of(server)
        return (v["verdict"], v["reason"]) == want

    await eventually(lambda: verdict_is(("allowed", "permit")), timeout_s=2)

    status, body, _ = await server.request(
        "POST",
        "/v1/permits/ONL-1/revoke",
        ADMIN,
        json={"reason": "plate misdeclared", "at": iso(-0.5)},
    )
    assert status == 200, body
    # The transit at NOW falls after the revocation instant: the permit no longer covers it.
    await eventually(lambda: verdict_is(("pending", "expired")), timeout_s=2)

    status, body, _ = await server.request(
        "POST", "/v1/permits/ONL-1/renew", ADMIN, json={"valid_from": iso(-0.5), "valid_to": iso(1)}
    )
    assert status == 200, body
    await eventually(lambda: verdict_is(("allowed", "permit")), timeout_s=2)

    # Plates change: the old plate loses the permit, the new one gains it.
    status, body, _ = await server.request(
        "PATCH", "/v1/permits/ONL-1", ADMIN, json={"plates": [{"plate": "hk 321 ln"}]}
    )
    assert status == 200 and body["plates"] == [{"plate": "HK321LN", "primary": True}], body
    await eventually(lambda: verdict_is(("pending", "no_permit")), timeout_s=2)
    assert (await verdict_of(server, "HK321LN"))["verdict"] == "allowed"

    status, body, _ = await server.request("GET", "/v1/permits/ONL-1", ADMIN)
    assert status == 200
    assert len(body["history"]) == 3  # issued, revoked, renewed: the versions before the patch
    assert body["history"][1]["valid_to"] < body["history"][0]["valid_to"]  # revocation kept
    revisions = [h["revision"] for h in body["history"]] + [body["revision"]]
    assert revisions == sorted(set(revisions))  # every change raised the revision


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (issue_body(valid_to=iso(5)), 422, "valid_to"),  # ONLINE lasts at most 2 h
        (issue_body(type="NOPE"), 422, "type"),
        (issue_body(plates=[{"plate": "--"}]), 422, "plates[0].plate"),
        (issue_body(plates=[]), 422, "plates"),
        (issue_body(zones=["MARS"]), 422, "zones"),
        (issue_body(valid_from="2026-11-23T10:00:00"), 422, "valid_from"),  # no offset
        (issue_body(colour="red"), 422, "colour"),
        (issue_body(valid_to=iso(-2)), 422, "valid_to"),  # before valid_from
        # beyond the index's range (2106): refused before anything is written
        (issue_body(type="1", valid_to="9999-12-31T23:59:59-12:00"), 422, "valid_to"),
        (
            issue_body(type="TEMP", valid_from="9999-12-01T00:00:00+01:00", valid_to=None),
            422,
            "valid_from",
        ),
        (issue_body(valid_from="1969-12-31T00:00:00+00:00"), 422, "valid_from"),
    ],
)
async def test_issue_rejects_bad_input(
    server: Client, body: dict[str, Any], status: int, field: str
) -> None:
    got, out, _ = await server.request("POST", "/v1/permits", ADMIN, json=body)
    assert (got, out.get("field")) == (status, field), out


async def test_roles_and_missing_permits(server: Client) -> None:
    for headers, want in ((CAMERA, 403), (POLICE, 403), ({}, 401)):
        status, _, _ = await server.request("POST", "/v1/permits", headers, json=issue_body())
        assert status == want
    status, body, _ = await server.request("GET", "/v1/permits/NOPE", ADMIN)
    assert (status, body["error"]) == (404, "not_found")
    status, body, _ = await server.request(
        "POST", "/v1/permits/NOPE/revoke", ADMIN, json={"reason": "x"}
    )
    assert status == 404
    status, _, _ = await server.request("POST", "/v1/permits", ADMIN, json=issue_body())
    assert status == 201
    status, body, _ = await server.request("POST", "/v1/permits", ADMIN, json=issue_body())
    assert (status, body["field"]) == (409, "permit_id")
    status, body, _ = await server.request("PATCH", "/v1/permits/ONL-1", ADMIN, json={})
    assert status == 422
    status, body, _ = await server.request("POST", "/v1/permits/ONL-1/revoke", ADMIN, json={})
    assert (status, body["field"]) == (422, "reason")
    status, body, _ = await server.request(
        "POST", "/v1/permits/ONL-1/revoke", {**ADMIN, "Content-Type": "text/plain"}, data=b"{}"
    )
    assert status == 415


async def test_concurrent_issues_of_one_number_give_one_permit(server: Client) -> None:
    """Five clerks issue the same number at once: one permit, four conflicts, no overwrite."""
    bodies = [issue_body(plates=[{"plate": f"HK32{i}LM"}]) for i in range(5)]
    replies = await asyncio.gather(
        *(server.request("POST", "/v1/permits", ADMIN, json=b) for b in bodies)
    )
    statuses = sorted(status for status, _, _ in replies)
    assert statuses == [201, 409, 409, 409, 409]
    winner = next(body for status, body, _ in replies if status == 201)
    status, body, _ = await server.request("GET", "/v1/permits/ONL-1", ADMIN)
    assert status == 200
    assert body["plates"] == winner["plates"] and "history" not in body  # never overwritten


async def test_concurrent_changes_are_never_lost(server: Client) -> None:
    """Two clerks change one permit at once (plates, end): each change either lands or is
    refused with 409, never silently overwritten by the other's stale copy."""
    status, _, _ = await server.request("POST", "/v1/permits", ADMIN, json=issue_body())
    assert status == 201
    for _ in range(5):
        _, before, _ = await server.request("GET", "/v1/permits/ONL-1", ADMIN)
        new_end = (
            dt.datetime.fromisoformat(before["valid_to"]) - dt.timedelta(minutes=1)
        ).isoformat()
        new_plate = "HK321LN" if before["plates"][0]["plate"] != "HK321LN" else "HK321LP"
        (s1, b1, _), (s2, b2, _) = await asyncio.gather(
            server.request(
                "PATCH", "/v1/permits/ONL-1", ADMIN, json={"plates": [{"plate": new_plate}]}
            ),
            server.request("PATCH", "/v1/permits/ONL-1", ADMIN, json={"valid_to": new_end}),
        )
        assert {s1, s2} <= {200, 409} and 200 in {s1, s2}, (b1, b2)
        _, after, _ = await server.request("GET", "/v1/permits/ONL-1", ADMIN)
        assert (after["plates"][0]["plate"] == new_plate) == (s1 == 200)
        assert (after["valid_to"] == new_end) == (s2 == 200)


async def test_if_match_guards_a_change_with_the_revision_read(server: Client) -> None:
    status, created, _ = await server.request("POST", "/v1/permits", ADMIN, json=issue_body())
    assert status == 201
    stale = {**ADMIN, "If-Match": str(created["revision"] - 1)}
    status, body, _ = await server.request(
        "POST", "/v1/permits/ONL-1/revoke", stale, json={"reason": "x"}
    )
    assert (status, body["field"]) == (412, "If-Match")
    status, body, _ = await server.request(
        "PATCH", "/v1/permits/ONL-1", {**ADMIN, "If-Match": "yesterday"}, json={"zones": []}
    )
    assert (status, body["field"]) == (422, "If-Match")
    fresh = {**ADMIN, "If-Match": f'"{created["revision"]}"'}
    status, body, _ = await server.request(
        "POST", "/v1/permits/ONL-1/revoke", fresh, json={"reason": "x"}
    )
    assert status == 200 and body["revision"] > created["revision"]


async def test_405_lists_every_method_of_the_path(server: Client) -> None:
    """A path two routes serve (GET and PATCH a permit): Allow names both (RFC 9110)."""
    status, body, r = await server.request("DELETE", "/v1/permits/ONL-1", ADMIN)
    assert (status, body["error"], r.headers["Allow"]) == (405, "method_not_allowed", "GET, PATCH")
    status, body, r = await server.request("GET", "/v1/permits", ADMIN)
    assert (status, r.headers["Allow"]) == (405, "POST")
