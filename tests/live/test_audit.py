"""The police audit trail with a real Redis (killable) and a real service on loopback, and in
file mode: a record before every answer, fail closed, the hash chain verified and tampered
with, date-range export, several writers at once."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestServer

from enforcement.audit.chain import GENESIS, AuditRecord, link_of
from enforcement.audit.writer import FileAudit, RedisAudit, audit_file
from enforcement.config.settings import Settings
from enforcement.core.live import IndexHolder
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.keys import Keys
from enforcement.replica.redis_server import EmbeddedRedis
from enforcement.replica.watcher import load_initial
from varco import cli

from ..api.test_api import PERMITS, Client
from ..conftest import DEMO_CONFIG, publish_permits

ROME = ZoneInfo("Europe/Rome")
LOOKUP = {"Authorization": "Bearer demo-police", "X-Reason": "verbale 123/2026: controllo"}


@dataclass
class Service:
    client: Client
    settings: Settings
    redis_url: str | None


async def start(settings: Settings, rules: Rules,
                redis_url: str | None) -> tuple[TestServer, aiohttp.ClientSession, Service]:  # fmt: skip
    """The service on loopback over the published test permits; the audit trail in Redis at
    `redis_url`, else in the data directory's file."""
    holder = IndexHolder()
    assert load_initial(holder, rules, settings.storage.snapshot_dir)
    app = create_app(settings, rules, holder, watch=False, redis_url=redis_url)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    session = aiohttp.ClientSession()
    client = Client(session, str(server.make_url("")).rstrip("/"))
    return server, session, Service(client, settings, redis_url)


@pytest.fixture
async def redis_service(demo: tuple[Settings, Rules],
                        redis_server: EmbeddedRedis) -> AsyncIterator[Service]:  # fmt: skip
    settings, rules = demo
    publish_permits(settings, rules, PERMITS)
    server, session, service = await start(settings, rules, redis_server.url)
    yield service
    await session.close()
    await server.close()


@pytest.fixture
async def file_service(demo: tuple[Settings, Rules]) -> AsyncIterator[Service]:
    settings, rules = demo
    publish_permits(settings, rules, PERMITS)
    server, session, service = await start(settings, rules, None)
    yield service
    await session.close()
    await server.close()


@pytest.fixture
def r(redis_server: EmbeddedRedis) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url, socket_timeout=5)
    yield client
    client.close()


KEY = Keys().audit  # the demo configuration's prefix


def audit_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
              settings: Settings, redis_url: str, *args: str) -> tuple[int, str, str]:  # fmt: skip
    """`varco audit ...` on the test's data directory and Redis ("off": the file)."""
    monkeypatch.setenv("VARCO_DATA_DIR", str(settings.storage.data_dir))
    monkeypatch.setenv("REDIS_URL", redis_url)
    capsys.readouterr()
    code = cli.main(["--config", str(DEMO_CONFIG), "audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def lookups(service: Service, plates: list[str]) -> None:
    for plate in plates:
        status, body, _ = await service.client.request("GET", f"/v1/plates/{plate}", LOOKUP)
        assert status == 200, body


def stream(r: redis.Redis) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return r.xrange(KEY)  # type: ignore[return-value]


def rewrite(r: redis.Redis, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
    """Replace the stream by `entries` (ids kept): how someone with Redis access edits it."""
    r.delete(KEY)
    for entry_id, fields in entries:
        r.xadd(KEY, fields, id=entry_id)  # type: ignore[arg-type]


def record(plate: str, reason: str = "controllo", results: int = 0) -> AuditRecord:
    return AuditRecord(key_id="demo-police", role="police", plate=plate,
                       at=dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC), zone=None, reason=reason,
                       results=results, host="elsewhere", pid=1)  # fmt: skip


def chain(days: list[dt.datetime]) -> list[tuple[int, int, str, str, bytes]]:
    """A valid chain of (seq, t, prev, link, body), one record at each instant: records from
    past days, as the service would have written them then."""
    import msgspec

    out, prev = [], GENESIS
    for seq, when in enumerate(days, 1):
        body = msgspec.json.encode(record(f"AA{seq:03d}AA", reason=f"day {when.date()}"))
        t = int(when.timestamp() * 1000)
        link = link_of(prev, seq, t, body)
        out.append((seq, t, prev, link, body))
        prev = link
    return out


PAST = [dt.datetime(2026, 11, d, h, tzinfo=ROME) for d, h in
        ((1, 9), (1, 23), (2, 0), (2, 13), (2, 23), (3, 8))]  # fmt: skip


# -- a record before every answer -----------------------------------------------------------


async def test_lookup_writes_a_record_first(redis_service: Service, r: redis.Redis) -> None:
    before = time.time()
    status, view, _ = await redis_service.client.request(
        "GET", "/v1/plates/fa 002-cu?zone=ZTL&at=2026-11-22T12:00:00%2B01:00", LOOKUP)
    assert status == 200
    [(entry_id, fields)] = stream(r)
    t, _, seq = entry_id.decode().partition("-")
    assert seq == "1" and before * 1000 - 5 <= int(t) <= time.time() * 1000 + 5
    body = json.loads(fields[b"body"])
    assert body == {"key_id": "demo-police", "role": "police", "plate": "FA002CU",
                    "at": "2026-11-22T12:00:00+01:00", "zone": "ZTL",
                    "reason": "verbale 123/2026: controllo", "results": len(view["permits"]),
                    "host": body["host"], "pid": body["pid"]}  # fmt: skip
    assert body["results"] == 1
    assert fields[b"prev"].decode() == GENESIS
    assert fields[b"link"].decode() == link_of(GENESIS, 1, int(t), fields[b"body"])
    # The reason as a query parameter; `at` defaults to now and is recorded resolved.
    status, _, _ = await redis_service.client.request(
        "GET", "/v1/plates/ZZ999ZZ?reason=pattuglia%2012", {"Authorization": "Bearer demo-admin"})
    assert status == 200
    second = json.loads(stream(r)[1][1][b"body"])
    assert (second["key_id"], second["role"], second["reason"], second["results"],
            second["zone"]) == ("demo-admin", "admin", "pattuglia 12", 0, None)  # fmt: skip
    assert abs(dt.datetime.fromisoformat(second["at"]).timestamp() - time.time()) < 5
    _, ready, _ = await redis_service.client.request("GET", "/readyz")
    assert ready["audit"] == {"backend": "redis", "writable": True, "last_error": None,
                              "writes": 2, "failures": 0}  # fmt: skip
    _, metrics, _ = await redis_service.client.request("GET", "/metrics")
    assert 'varco_audit_writes_total{result="ok"} 2' in metrics
    assert "FA002CU" not in metrics and "verbale" not in metrics


async def test_no_reason_no_lookup_no_record(redis_service: Service, r: redis.Redis) -> None:
    police = {"Authorization": "Bearer demo-police"}
    for headers, query in ((police, ""), ({**police, "X-Reason": "  "}, ""), (police, "?reason=")):
        status, body, _ = await redis_service.client.request(
            "GET", f"/v1/plates/AB123CD{query}", headers)
        assert (status, body["error"], body["field"]) == (422, "invalid", "reason")
        assert "permits" not in body
    assert stream(r) == []


async def test_redis_killed_fails_closed_then_recovers(
    redis_service: Service, redis_server: EmbeddedRedis, r: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
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
    code, out, _ = audit_cli(monkeypatch, capsys, redis_service.settings, redis_server.url,
                             "verify")  # fmt: skip
    assert code == 0 and "audit chain intact: 3 records" in out, out


async def test_redis_that_would_lose_records_is_refused(redis_service: Service,
                                                        r: redis.Redis) -> None:  # fmt: skip
    r.config_set("appendfsync", "everysec")  # Redis 7.0: no WAITAOF to make up for it
    status, body, _ = await redis_service.client.request("GET", "/v1/plates/AB123CD", LOOKUP)
    assert (status, body["error"]) == (503, "audit_unavailable")
    _, ready, _ = await redis_service.client.request("GET", "/readyz")
    assert "appendfsync" in ready["audit"]["last_error"]
    assert stream(r) == []
    r.config_set("appendfsync", "always")
    await lookups(redis_service, ["AB123CD"])
    assert len(stream(r)) == 1


# -- the chain --------------------------------------------------------------------------------


async def test_verify_detects_alteration_deletion_reordering(
    redis_service: Service, redis_server: EmbeddedRedis, r: redis.Redis,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    await lookups(redis_service, ["AB123CD", "FA001CU", "FA002CU", "ZZ999ZZ", "AB123C0", "XY1"])
    original = stream(r)
    assert len(original) == 6

    def verify() -> tuple[int, str]:
        code, out, _ = audit_cli(monkeypatch, capsys, redis_service.settings, redis_server.url,
                                 "verify")  # fmt: skip
        return code, out

    code, out = verify()
    assert code == 0 and "audit chain intact: 6 records" in out, out
    assert f"last record: seq 6, link {original[5][1][b'link'].decode()}" in out

    # Altered: another reason in record 3.
    body = json.loads(original[2][1][b"body"])
    forged = json.dumps({**body, "reason": "routine"}, separators=(",", ":")).encode()
    rewrite(r, [*original[:2], (original[2][0], {**original[2][1], b"body": forged}),
                *original[3:]])  # fmt: skip
    code, out = verify()
    assert code == 1 and "first break at record 3 checked" in out and "altered" in out, out

    # Deleted in the middle: record 3 gone.
    rewrite(r, original)
    assert verify()[0] == 0
    r.xdel(KEY, original[2][0])
    code, out = verify()
    assert code == 1 and "first break at record 3 checked" in out, out
    assert "seq 4 where 3 was expected: record(s) 3 deleted or moved" in out

    # Reordered: records 3 and 4 swapped (a stream keeps its ids in order, so the contents
    # move, and no longer match the ids their links cover).
    rewrite(r, [*original[:2], (original[2][0], original[3][1]), (original[3][0], original[2][1]),
                *original[4:]])  # fmt: skip
    code, out = verify()
    assert code == 1 and "first break at record 3 checked" in out and "moved" in out, out

    # The last record deleted: the stream remembers the last id it handed out.
    rewrite(r, original)
    r.xdel(KEY, original[5][0])
    code, out = verify()
    assert code == 1 and "records after seq 5 were deleted" in out, out
    # ... and the next lookup's record shows the gap in the chain itself.
    await lookups(redis_service, ["AB123CD"])
    code, out = verify()
    assert code == 1 and "seq 7 where 6 was expected" in out, out


async def test_concurrent_writers_one_chain(redis_service: Service, redis_server: EmbeddedRedis,
                                            r: redis.Redis, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    """Two more "replicas" and the service append at once: one unbroken chain."""
    others = [RedisAudit(redis_server.url, KEY) for _ in range(2)]
    try:
        await asyncio.gather(
            *(a.write(record(f"CC{i:03d}CC")) for a in others for i in range(40)),
            *(redis_service.client.request("GET", f"/v1/plates/DD{i:03d}DD", LOOKUP)
              for i in range(20)),
        )  # fmt: skip
    finally:
        for a in others:
            await a.close()
    assert len(stream(r)) == 100
    code, out, _ = audit_cli(monkeypatch, capsys, redis_service.settings, redis_server.url,
                             "verify")  # fmt: skip
    assert code == 0 and "intact: 100 records (seq 1-100" in out, out


async def test_export_and_verify_a_date_range(
    redis_service: Service, redis_server: EmbeddedRedis, r: redis.Redis, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    for seq, t, prev, link, body in chain(PAST):
        r.xadd(KEY, {"prev": prev, "link": link, "body": body}, id=f"{t}-{seq}")
    await lookups(redis_service, ["AB123CD"])  # today's, chained after them by the Lua script
    settings, url = redis_service.settings, redis_server.url
    code, out, _ = audit_cli(monkeypatch, capsys, settings, url, "verify")
    assert code == 0 and "intact: 7 records" in out, out

    target = tmp_path / "day2.csv"
    code, _, err = audit_cli(monkeypatch, capsys, settings, url, "export", "--from",
                             "2026-11-02", "--to", "2026-11-03", "--output", str(target))  # fmt: skip
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["seq"] for row in rows] == ["3", "4", "5"]  # 2 Nov, 00:00 to 23:00 local
    assert rows[0]["time"] == "2026-11-02T00:00:00.000+01:00"
    assert rows[0]["plate"] == "AA003AA" and rows[0]["reason"] == "day 2026-11-02"
    assert "exported 3 audit records" in err

    code, out, _ = audit_cli(monkeypatch, capsys, settings, url, "export", "--from",
                             "2026-11-01T23:00", "--to", "2026-11-02T13:00", "--format", "json")  # fmt: skip
    exported = json.loads(out)
    assert code == 0 and [x["seq"] for x in exported] == [2, 3]
    for x in exported:  # an export is checkable on its own
        assert x["link"] == link_of(x["prev"], x["seq"], x["t_ms"], x["body"].encode())

    code, out, _ = audit_cli(monkeypatch, capsys, settings, url, "verify", "--from",
                             "2026-11-02", "--to", "2026-11-03T08:00:01")  # fmt: skip
    assert code == 0 and "intact: 4 records (seq 3-6" in out, out
    # Damage before the range does not show in it; damage inside does.
    entries = stream(r)
    r.xdel(KEY, entries[0][0])
    code, out, _ = audit_cli(monkeypatch, capsys, settings, url, "verify", "--from", "2026-11-02")
    assert code == 0, out
    r.xdel(KEY, entries[3][0])  # seq 4
    code, out, err = audit_cli(monkeypatch, capsys, settings, url, "export", "--from",
                               "2026-11-02", "--to", "2026-11-03", "--output", str(target))  # fmt: skip
    assert code == 1 and "seq 5 where 4 was expected" in err, err
    assert [row["seq"] for row in csv.DictReader(io.StringIO(target.read_text()))] == ["3", "5"]

    code, _, err = audit_cli(monkeypatch, capsys, settings, url, "export", "--from", "someday",
                             "--to", "2026-11-03")  # fmt: skip
    assert code == 2 and "--from: 'someday' is not a date" in err


# -- file mode --------------------------------------------------------------------------------


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


async def test_file_mode(file_service: Service, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:  # fmt: skip
    settings = file_service.settings
    path = audit_file(settings.storage.data_dir)

    def verify(*args: str) -> tuple[int, str]:
        code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "verify", *args)
        return code, out

    await lookups(file_service, ["AB123CD", "FA001CU", "FA002CU", "ZZ999ZZ", "AB123C0"])
    original = lines(path)
    seq, t, prev, link, body = original[0].rstrip(b"\n").split(b"\t")
    assert (seq, prev.decode()) == (b"1", GENESIS)
    assert json.loads(body)["plate"] == "AB123CD"
    assert link.decode() == link_of(GENESIS, 1, int(t), body)
    _, ready, _ = await file_service.client.request("GET", "/readyz")
    assert ready["audit"]["backend"] == "file" and ready["audit"]["writable"] is True
    code, out = verify()
    assert code == 0 and "intact: 5 records" in out, out

    path.write_bytes(b"".join([*original[:2], original[2].replace(b"controllo", b"routine!!"),
                               *original[3:]]))  # fmt: skip
    code, out = verify()
    assert code == 1 and "record 3 checked (line 3" in out and "altered" in out, out

    path.write_bytes(b"".join(original[:2] + original[3:]))
    code, out = verify()
    assert code == 1 and "record 3 checked (line 3" in out and "record(s) 3 deleted" in out, out

    path.write_bytes(b"".join([*original[:2], original[3], original[2], *original[4:]]))
    code, out = verify()
    assert code == 1 and "record 3 checked (line 3, seq 4" in out, out

    # A write cut short by a crash: noted, not a break; the next writer cuts it off.
    path.write_bytes(b"".join(original) + original[0][:30])
    code, out = verify()
    assert code == 0 and "line 6 is incomplete" in out, out
    await lookups(file_service, ["AB123CD"])
    assert lines(path)[:5] == original and lines(path)[5].startswith(b"6\t")
    assert verify()[0] == 0

    # Another audit file, by name.
    other = tmp_path / "archived.log"
    other.write_bytes(b"".join(original[:3]))
    code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "verify", "--file", str(other))
    assert code == 0 and "intact: 3 records" in out, out


async def test_file_mode_ranges_and_workers(demo: tuple[Settings, Rules],
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    settings, _ = demo
    path = audit_file(settings.storage.data_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"".join(b"%d\t%d\t%s\t%s\t%s\n" % (seq, t, prev.encode(), link.encode(),
                                                            body)
                              for seq, t, prev, link, body in chain(PAST)))  # fmt: skip
    # Two workers' writers (each its own descriptor, so the flock is contended) at once.
    writers = [FileAudit(path), FileAudit(path)]
    try:
        await asyncio.gather(*(w.write(record(f"EE{i:03d}EE")) for w in writers
                               for i in range(30)))  # fmt: skip
    finally:
        for w in writers:
            await w.close()
    code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "verify")
    assert code == 0 and "intact: 66 records (seq 1-66" in out, out
    code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "export", "--from",
                             "2026-11-02", "--to", "2026-11-03", "--format", "json")  # fmt: skip
    assert code == 0 and [x["seq"] for x in json.loads(out)] == [3, 4, 5]
    code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "verify", "--from",
                             "2026-11-02", "--to", "2026-11-03")  # fmt: skip
    assert code == 0 and "intact: 3 records (seq 3-5" in out, out


async def test_file_mode_fails_closed(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    publish_permits(settings, rules, PERMITS)
    audit_file(settings.storage.data_dir).parent.write_text("not a directory")  # the file cannot exist
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
