"""Police lookups need a reason, and are recorded before they are answered (here in the file
audit of a service without Redis; tests/audit/ has Redis and the chain)."""

from __future__ import annotations

import asyncio
import json

import pytest

from enforcement.audit.chain import REASON_MAX
from enforcement.audit.writer import audit_file

from ..support.api import POLICE, Client


def records(client: Client) -> list[dict[str, object]]:
    path = audit_file(client.settings.storage.data_dir)  # type: ignore[attr-defined]
    if not path.exists():
        return []
    return [json.loads(line.split(b"\t", 4)[4]) for line in path.read_bytes().splitlines()]


@pytest.mark.parametrize(
    ("query", "headers", "detail"),
    [
        ("", {}, "needs a reason"),
        ("", {"X-Reason": ""}, "needs a reason"),
        ("", {"X-Reason": "   "}, "needs a reason"),
        ("?reason=", {}, "needs a reason"),
        ("", {"X-Reason": "x" * (REASON_MAX + 1)}, f"at most {REASON_MAX}"),
        ("?reason=riga%0Adue", {}, "one line"),
        ("?reason=tab%09here", {}, "one line"),
        ("?reason=a", {"X-Reason": "b"}, "give the reason once"),
        ("?reason=a&reason=b", {}, "give the reason once"),
    ],
)
async def test_reason_required(
    api: Client, query: str, headers: dict[str, str], detail: str
) -> None:
    status, body, _ = await api.request("GET", f"/v1/plates/AB123CD{query}", {**POLICE, **headers})
    assert (status, body["error"], body["field"]) == (422, "invalid", "reason")
    assert detail in body["detail"]
    assert "riga" not in body["detail"] and "xxxx" not in body["detail"]  # never echoed
    assert records(api) == []


async def test_lookup_recorded_before_answer(api: Client) -> None:
    status, view, _ = await api.request(
        "GET", "/v1/plates/ab123cd?reason=perch%C3%A9%20s%C3%AC", POLICE
    )
    assert status == 200 and view["plate"] == "AB123CD"
    status, _, _ = await api.request(
        "GET", "/v1/plates/ZZ999ZZ?zone=ZTL", {**POLICE, "X-Reason": "x" * REASON_MAX}
    )
    assert status == 200
    first, second = records(api)
    assert (first["plate"], first["reason"], first["results"], first["key_id"]) == (
        "AB123CD",
        "perché sì",
        len(view["permits"]),
        "demo-police",
    )
    assert (second["plate"], second["zone"], second["results"]) == ("ZZ999ZZ", "ZTL", 0)
    # Refused lookups (bad `at`, 401, 403) disclose nothing and leave no record.
    await api.request("GET", "/v1/plates/AB123CD?at=tomorrow&reason=x", POLICE)
    await api.request("GET", "/v1/plates/AB123CD?reason=x")
    await api.request("GET", "/v1/plates/AB123CD?reason=x", {"Authorization": "Bearer demo-camera"})
    assert len(records(api)) == 2
    _, metrics, _ = await api.request("GET", "/metrics")
    assert 'varco_audit_writes_total{result="ok"} 2' in metrics
    assert 'varco_audit_writes_total{result="failed"} 0' in metrics
    assert "AB123CD" not in metrics and "perch" not in metrics


async def test_openapi_documents_the_reason(api: Client) -> None:
    _, doc, _ = await api.request("GET", "/openapi.json")
    op = doc["paths"]["/v1/plates/{plate}"]["get"]
    params = {(p["name"], p["in"]) for p in op["parameters"]}
    assert {("X-Reason", "header"), ("reason", "query")} <= params
    assert "audit" in op["responses"]["503"]["description"]
    assert "reason" in op["responses"]["422"]["description"]
    assert "audit trail" in op["description"]


async def test_undecodable_reason_header(api: Client) -> None:
    """Raw bytes that are not UTF-8 in X-Reason: a 422, never a 500 or a mangled record."""
    host, port = api.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"GET /v1/plates/AB123CD HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer demo-police\r\nX-Reason: caf\xe9 \xff\r\n\r\n"
    )
    await writer.drain()
    reply = await reader.read()
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 422"), reply
    assert json.loads(body)["field"] == "reason"
    assert records(api) == []
