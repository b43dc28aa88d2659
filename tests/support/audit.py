"""The police audit trail as its tests drive it: the service on loopback with its trail in Redis
or in a file, police lookups, `varco audit` in-process, the Redis stream read and rewritten,
and chains of records made by hand for past days (the fixtures: tests/audit/conftest.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import redis
from aiohttp.test_utils import TestServer

from enforcement.audit.chain import GENESIS, AuditRecord, link_of
from enforcement.config.settings import Settings
from enforcement.core.live import IndexHolder
from enforcement.core.rules import Rules
from enforcement.http.app import create_app
from enforcement.keys import Keys
from enforcement.replica.watcher import load_initial
from varco import cli

from .api import Client, ServiceServer
from .common import DEMO_CONFIG

ROME = ZoneInfo("Europe/Rome")
LOOKUP = {"Authorization": "Bearer demo-police", "X-Reason": "verbale 123/2026: controllo"}


@dataclass
class Service:
    client: Client
    settings: Settings
    redis_url: str | None


async def start(
    settings: Settings, rules: Rules, redis_url: str | None
) -> tuple[TestServer, aiohttp.ClientSession, Service]:
    """The service on loopback over the published test permits; the audit trail in Redis at
    `redis_url`, else in the data directory's file."""
    holder = IndexHolder()
    assert load_initial(holder, rules, settings.storage.snapshot_dir)
    app = create_app(settings, rules, holder, watch=False, redis_url=redis_url)
    server = ServiceServer(app)
    await server.start_server()
    session = aiohttp.ClientSession()
    client = Client(session, str(server.make_url("")).rstrip("/"))
    return server, session, Service(client, settings, redis_url)


KEY = Keys().audit  # the demo configuration's prefix


def audit_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    redis_url: str,
    *args: str,
) -> tuple[int, str, str]:
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
    return AuditRecord(
        key_id="demo-police",
        role="police",
        plate=plate,
        at=dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC),
        zone=None,
        reason=reason,
        results=results,
        host="elsewhere",
        pid=1,
    )


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


PAST = [
    dt.datetime(2026, 11, d, h, tzinfo=ROME)
    for d, h in ((1, 9), (1, 23), (2, 0), (2, 13), (2, 23), (3, 8))
]
