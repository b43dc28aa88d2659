"""The helpers every area uses: the repository's paths, instants as ISO text, demo permits and
publishing them as a snapshot, polling until something holds, a free port."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from enforcement.config.settings import Settings
from enforcement.core.live import IndexHolder, LiveIndex
from enforcement.core.rules import Rules
from enforcement.replica.watcher import load_initial
from loader.rebuild import rebuild
from loader.sqlite import PermitDB
from loader.store import PermitRow

ROOT = Path(__file__).resolve().parent.parent.parent
DEMO_CONFIG = ROOT / "examples" / "demo.toml"


def at(text: str) -> int:
    """Epoch seconds of an ISO 8601 instant with offset."""
    value = dt.datetime.fromisoformat(text)
    assert value.tzinfo is not None, "give test instants an offset"
    return int(value.timestamp())


def publish_permits(
    settings: Settings, rules: Rules, permits: Iterable[PermitRow], history_days: int = 100_000
) -> LiveIndex:
    """Upsert permits into the settings' database, publish a snapshot, return it live."""
    with PermitDB(settings.storage.database_path) as db:
        db.upsert(permits)
        rebuild(db, rules, settings.storage.snapshot_dir, history_days, max_shrink=1.0)
    holder = IndexHolder()
    assert load_initial(holder, rules, settings.storage.snapshot_dir)
    assert holder.current is not None
    return holder.current


# What the `publish` fixture (tests/conftest.py) gives: permits in, the published index out.
Publish = Callable[[list[PermitRow]], LiveIndex]


def permit(
    permit_id: str,
    plate: str,
    type_: str,
    valid_from: str,
    valid_to: str | None = None,
    zones: tuple[str, ...] = (),
    source: str = "municipal",
    plates: tuple[tuple[str, bool], ...] | None = None,
) -> PermitRow:
    return PermitRow(
        permit_id,
        type_,
        at(valid_from),
        at(valid_to) if valid_to else None,
        zones,
        source,
        plates if plates is not None else ((plate, True),),
    )


async def eventually(probe: Any, timeout_s: float = 10.0, every_s: float = 0.02) -> Any:
    """Poll an async probe until it returns something truthy; its last value otherwise fails."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        value = await probe()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {value!r}")
        await asyncio.sleep(every_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Two registered native cameras at two gates: what a gateway's key is bound to
# (tests/config/test_api_keys.py, tests/http/test_integrity.py).
GATEWAY = """
[cameras.gw-1]
gate = "PD-01"
vendor = "native"

[cameras.gw-2]
gate = "PD-02"
vendor = "native"
"""
