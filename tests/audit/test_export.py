"""The audit trail by date range, in Redis and in file mode: `varco audit export` (CSV or
JSON, each record checkable on its own) and `varco audit verify --from/--to`, over records
from past days and today's, several writers at once."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import pytest
import redis

from enforcement.audit.chain import link_of
from enforcement.audit.writer import FileAudit, audit_file
from enforcement.config.settings import Settings
from enforcement.core.rules import Rules
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.audit import KEY, PAST, Service, audit_cli, chain, lookups, record, stream


async def test_export_and_verify_a_date_range(
    redis_service: Service,
    redis_server: EmbeddedRedis,
    r: redis.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for seq, t, prev, link, body in chain(PAST):
        r.xadd(KEY, {"prev": prev, "link": link, "body": body}, id=f"{t}-{seq}")
    await lookups(redis_service, ["AB123CD"])  # today's, chained after them by the Lua script
    settings, url = redis_service.settings, redis_server.url
    code, out, _ = audit_cli(monkeypatch, capsys, settings, url, "verify")
    assert code == 0 and "intact: 7 records" in out, out

    target = tmp_path / "day2.csv"
    code, _, err = audit_cli(
        monkeypatch,
        capsys,
        settings,
        url,
        "export",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-03",
        "--output",
        str(target),
    )
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [row["seq"] for row in rows] == ["3", "4", "5"]  # 2 Nov, 00:00 to 23:00 local
    assert rows[0]["time"] == "2026-11-02T00:00:00.000+01:00"
    assert rows[0]["plate"] == "AA003AA" and rows[0]["reason"] == "day 2026-11-02"
    assert "exported 3 audit records" in err

    code, out, _ = audit_cli(
        monkeypatch,
        capsys,
        settings,
        url,
        "export",
        "--from",
        "2026-11-01T23:00",
        "--to",
        "2026-11-02T13:00",
        "--format",
        "json",
    )
    exported = json.loads(out)
    assert code == 0 and [x["seq"] for x in exported] == [2, 3]
    for x in exported:  # an export is checkable on its own
        assert x["link"] == link_of(x["prev"], x["seq"], x["t_ms"], x["body"].encode())

    code, out, _ = audit_cli(
        monkeypatch,
        capsys,
        settings,
        url,
        "verify",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-03T08:00:01",
    )
    assert code == 0 and "intact: 4 records (seq 3-6" in out, out
    # Damage before the range does not show in it; damage inside does.
    entries = stream(r)
    r.xdel(KEY, entries[0][0])
    code, out, _ = audit_cli(monkeypatch, capsys, settings, url, "verify", "--from", "2026-11-02")
    assert code == 0, out
    r.xdel(KEY, entries[3][0])  # seq 4
    code, out, err = audit_cli(
        monkeypatch,
        capsys,
        settings,
        url,
        "export",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-03",
        "--output",
        str(target),
    )
    assert code == 1 and "seq 5 where 4 was expected" in err, err
    assert [row["seq"] for row in csv.DictReader(io.StringIO(target.read_text()))] == ["3", "5"]

    code, _, err = audit_cli(
        monkeypatch, capsys, settings, url, "export", "--from", "someday", "--to", "2026-11-03"
    )
    assert code == 2 and "--from: 'someday' is not a date" in err


async def test_file_mode_ranges_and_workers(
    demo: tuple[Settings, Rules],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, _ = demo
    path = audit_file(settings.storage.data_dir)
    path.parent.mkdir(parents=True)
    path.write_bytes(
        b"".join(
            b"%d\t%d\t%s\t%s\t%s\n" % (seq, t, prev.encode(), link.encode(), body)
            for seq, t, prev, link, body in chain(PAST)
        )
    )
    # Two workers' writers (each its own descriptor, so the flock is contended) at once.
    writers = [FileAudit(path), FileAudit(path)]
    try:
        await asyncio.gather(*(w.write(record(f"EE{i:03d}EE")) for w in writers for i in range(30)))
    finally:
        for w in writers:
            await w.close()
    code, out, _ = audit_cli(monkeypatch, capsys, settings, "off", "verify")
    assert code == 0 and "intact: 66 records (seq 1-66" in out, out
    code, out, _ = audit_cli(
        monkeypatch,
        capsys,
        settings,
        "off",
        "export",
        "--from",
        "2026-11-02",
        "--to",
        "2026-11-03",
        "--format",
        "json",
    )
    assert code == 0 and [x["seq"] for x in json.loads(out)] == [3, 4, 5]
    code, out, _ = audit_cli(
        monkeypatch, capsys, settings, "off", "verify", "--from", "2026-11-02", "--to", "2026-11-03"
    )
    assert code == 0 and "intact: 3 records (seq 3-5" in out, out


def test_csv_cells_never_run_as_formulas() -> None:
    """Every text cell of the CSV export, not only the reason, starts as text (csvcells.py);
    numbers stay numbers."""
    import msgspec

    from enforcement.audit.chain import GENESIS, Entry
    from enforcement.audit.export import export_writer

    from ..support.audit import ROME

    rec = msgspec.structs.replace(
        record("@AB123CD", reason="=1+1"), key_id="+key", zone="-ZTL", host="\tcalc"
    )
    body = msgspec.json.encode(rec)
    t_ms = 1_793_530_800_000
    out = io.StringIO()
    write = export_writer(out, "csv", ROME)
    write(Entry(1, "line 1", 7, t_ms, GENESIS, link_of(GENESIS, 7, t_ms, body), body))
    write(None)
    [row] = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (row["reason"], row["plate"], row["key_id"]) == ("'=1+1", "'@AB123CD", "'+key")
    assert (row["zone"], row["host"]) == ("'-ZTL", "'\tcalc")
    assert (row["seq"], row["pid"], row["t_ms"], row["role"]) == ("7", "1", str(t_ms), "police")
