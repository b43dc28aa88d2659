"""The police audit trail written, with a real Redis (killable) and a real service on loopback,
and in file mode: a record before every answer, none without a reason, fail closed, several
writers on one chain (verify: test_verify.py; date ranges and export: test_export.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest
import redis

from enforcement.audit.chain import GENESIS, link_of
from enforcement.audit.writer import RedisAudit, audit_file
from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.api import PERMITS
from ..support.audit import LOOKUP, Service, audit_cli, lookups, record, start, stream
from ..support.common import publish_permits

# -- a record before every answer -----------------------------------------------------------


async def test_lookup_writes_a_record_first(redis_service: Service, r: redis.Redis) -> None:
    before = time.time()
    status, view, _ = await redis_service.client.request(
        "GET", "/v1/plates/fa 002-cu?zone=ZTL&at=2026-11-22T12:00:00%2B01:00", LOOKUP
    )
    assert status == 200
    [(entry_id, fields)] = stream(r)
    t, _, seq = entry_id.decode().partition("-")
    assert seq == "1" and before * 1000 - 5 <= int(t) <= time.time() * 1000 + 5
    body = json.loads(fields[b"body"])
    assert body == {
        "key_id": "demo-police",
        "role": "police",
        "plate": "FA002CU",
        "at": "2026-11-22T12:00:00+01:00",
        "zone": "ZTL",
        "reason": "verbale 123/2026: controllo",
        "results": len(view["permits"]),
        "host": body["host"],
        "pid": body["pid"],
    }  # a key's lookup: the later fields (action, person, ...) left out at their defaults
    assert body["results"] == 1
    assert fields[b"prev"].decode() == GENESIS
    assert fields[b"link"].decode() == link_of(GENESIS, 1, int(t), fields[b"body"])
    # The reason as a query parameter; `at` defaults to now and is recorded resolved.
    status, _, _ = await redis_service.client.request(
        "GET", "/v1/plates/ZZ999ZZ?reason=pattuglia%2012", {"Authorization": "Bearer demo-admin"}
    )
    assert status == 200
    second = json.loads(stream(r)[1][1][b"body"])
    assert (
        second["key_id"],
        second["role"],
        second["reason"],
        second["results"],
        second["zone"],
    ) == ("demo-admin", "admin", "pattuglia 12", 0, None)
    assert abs(dt.datetime.fromisoformat(second["at"]).timestamp() - time.time()) < 5
    _, ready, _ = await redis_service.client.request("GET", "/readyz")
    assert ready["audit"] == {
        "backend": "redis",
        "writable": True,
        "last_error": None,
        "writes": 2,
        "failures": 0,
    }
    _, metrics, _ = await redis_service.client.request("GET", "/metrics")
    assert 'varco_audit_writes_total{result="ok"} 2' in metrics
    assert "FA002CU" not in metrics and "verbale" not in metrics


async def test_no_reason_no_lookup_no_record(redis_service: Service, r: redis.Redis) -> None:
    police = {"Authorization": "Bearer demo-police"}
    for headers, query in ((police, ""), ({**police, "X-Reason": "  "}, ""), (police, "?reason=")):
        status, body, _ = await redis_service.client.request(
            "GET", f"/v1/plates/AB123CD{query}", headers
        )
        assert (status, body["error"], body["field"]) == (422, "invalid", "reason")
        assert "permits" not in body
    assert stream(r) == []


async def test_redis_killed_fails_closed_then_recovers(
    redis_service: Service,
    redis_server: EmbeddedRedis,
    r: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = redis_service.client
    await lookups(redis_service, ["AB123CD", "FA001CU"])
    redis_server.kill()  # SIGKILL: no goodbye
    for _ in range(3):
        t0 = time.monotonic()
        status, body, response = await client.request("GET", "/v1/plates/AB123CD", LOOKUP)
        # Refused at once, with a JSON error and no view: no reconnect loop on the request path.
        assert time.monotonic() - t0 < 2.5
        assert (status, body["error"]) == (503, "audit_unavailable"), body
        assert "permits" not in body and "AB123CD" not in json.dumps(body)
        assert response.headers.get("Retry-After") == "1"
    _, ready, _ = await client.request("GET", "/readyz")
    assert ready["audit"]["writable"] is False and ready["audit"]["failures"] == 3
    assert ready["audit"]["last_error"]
    _, metrics, _ = await client.request("GET", "/metrics")
    assert 'varco_audit_writes_total{result="failed"} 3' in metrics
    # Back (same data directory): the records acknowledged before the kill are there, and
    # the chain goes on from them.
    redis_server.start()
    await lookups(redis_service, ["AB123CD"])
    assert [e[0].decode().split("-")[1] for e in stream(r)] == ["1", "2", "3"]
    code, out, _ = audit_cli(
        monkeypatch, capsys, redis_service.settings, redis_server.url, "verify"
    )
    assert code == 0 and "audit chain intact: 3 records" in out, out


async def test_redis_that_would_lose_records_is_refused(
    redis_service: Service, r: redis.Redis
) -> None:
    r.config_set("appendfsync", "everysec")  # Redis 7.0: no WAITAOF to make up for it
    status, body, _ = await redis_service.client.request("GET", "/v1/plates/AB123CD", LOOKUP)
    assert (status, body["error"]) == (503, "audit_unavailable")
    _, ready, _ = await redis_service.client.request("GET", "/readyz")
    assert "appendfsync" in ready["audit"]["last_error"]
    assert stream(r) == []
    r.config_set("appendfsync", "always")
    await lookups(redis_service, ["AB123CD"])
    assert len(stream(r)) == 1


# -- several writers, one chain ---------------------------------------------------------------


async def test_concurrent_writers_one_chain(
    redis_service: Service,
    redis_server: EmbeddedRedis,
    r: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two more "replicas" and the service append at once: one unbroken chain."""
    others = [RedisAudit(redis_server.url, Keys()) for _ in range(2)]
    try:
        await asyncio.gather(
            *(a.write(record(f"CC{i:03d}CC")) for a in others for i in range(40)),
            *(
                redis_service.client.request("GET", f"/v1/plates/DD{i:03d}DD", LOOKUP)
                for i in range(20)
            ),
        )
    finally:
        for a in others:
            await a.close()
    assert len(stream(r)) == 100
    code, out, _ = audit_cli(
        monkeypatch, capsys, redis_service.settings, redis_server.url, "verify"
    )
    assert code == 0 and "intact: 100 records (seq 1-100" in out, out


# -- file mode --------------------------------------------------------------------------------


async def test_file_mode_fails_closed(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    publish_permits(settings, rules, PERMITS)
    # A file where the audit directory should be: the audit file cannot exist.
    audit_file(settings.storage.data_dir).parent.write_text("not a directory")
    server, session, service = await start(settings, rules, None)
    try:
        status, body, _ = await service.client.request("GET", "/v1/plates/AB123CD", LOOKUP)
        assert (status, body["error"]) == (503, "audit_unavailable")
        assert "permits" not in body
        _, ready, _ = await service.client.request("GET", "/readyz")
        assert ready["audit"]["writable"] is False and ready["audit"]["last_error"]
    finally:
        await session.close()
        await server.close()
