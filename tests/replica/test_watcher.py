"""Loading snapshots into the service: fallback at start-up, refusal, SIGHUP."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from aiohttp import web

from enforcement.config.settings import Settings, with_changes
from enforcement.core.live import IndexHolder
from enforcement.core.rules import Rules
from enforcement.replica.watcher import load_initial, snapshot_watcher

from ..support.common import permit, publish_permits


def corrupt_current(snapshot_dir: Path) -> None:
    """Point current.vidx at a damaged copy of the snapshot it names."""
    good = (snapshot_dir / "current.vidx").resolve()
    data = bytearray(good.read_bytes())
    data[-10] ^= 0xFF
    bad = snapshot_dir / "damaged.vidx"
    bad.write_bytes(bytes(data))
    os.utime(bad, (1, 1))  # older than every good file: not a fallback candidate by age
    link = snapshot_dir / ".link"
    link.symlink_to(bad.name)
    os.replace(link, snapshot_dir / "current.vidx")


def test_startup_falls_back_to_newest_good(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    publish_permits(settings, rules, [permit("A", "AB123CD", "1", "2020-01-01T00:00:00+01:00")])
    publish_permits(settings, rules, [permit("B", "EF456GH", "1", "2020-01-01T00:00:00+01:00")])
    corrupt_current(settings.storage.snapshot_dir)
    holder = IndexHolder()
    assert load_initial(holder, rules, settings.storage.snapshot_dir)
    assert holder.current is not None and holder.current.revision == 2  # the newest good one
    assert holder.rejected == 1


def test_startup_with_nothing_good(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    settings.storage.snapshot_dir.mkdir(parents=True)
    (settings.storage.snapshot_dir / "current.vidx").write_bytes(b"VARCOIDX garbage")
    holder = IndexHolder()
    assert not load_initial(holder, rules, settings.storage.snapshot_dir)
    assert holder.current is None and holder.last_error


async def test_sighup_checks_at_once(demo: tuple[Settings, Rules]) -> None:
    settings, rules = demo
    slow = with_changes(settings, server={"snapshot_poll_s": 3600.0})
    publish_permits(slow, rules, [permit("A", "AB123CD", "1", "2020-01-01T00:00:00+01:00")])
    holder = IndexHolder()
    resource = snapshot_watcher(slow, rules, holder)(web.Application())
    await resource.__anext__()
    try:
        assert holder.current is not None and holder.current.revision == 1
        await asyncio.to_thread(
            publish_permits, slow, rules, [permit("B", "EF456GH", "1", "2020-01-01T00:00:00+01:00")]
        )
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):  # bounded: 5 s, against an hour's poll interval
            if holder.current.revision == 2:
                break
            await asyncio.sleep(0.05)
        assert holder.current.revision == 2
    finally:
        with contextlib.suppress(StopAsyncIteration):  # the cleanup half, as aiohttp runs it
            await resource.__anext__()
