"""Feeds inside the loader daemon, seen from a replica: a synced regional export is enforced,
a missing CUDE export is an error and a warning, a truncated export keeps the last good data;
all of it in /readyz and /metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from enforcement.config.load import load_config
from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.replica.redis_server import EmbeddedRedis
from loader.watch import LoaderThread, WatchOptions

from ..support.api import Client, start_replica, verdict
from ..support.common import DEMO_CONFIG, eventually
from ..support.feeds import GOOD, regional

SOURCES = """
[sources.vivipass]
kind = "regional_csv"
path = "feeds/vivipass.csv"
schedule = "1s"

[sources.cude]
kind = "cude_csv"
path = "feeds/cude.csv"
type = "CUDE"
schedule = "1s"
"""


@pytest.fixture
def city(tmp_path: Path, redis_server: EmbeddedRedis) -> tuple[Settings, Rules]:
    config = tmp_path / "city.toml"
    config.write_text(DEMO_CONFIG.read_text(encoding="utf-8") + SOURCES, encoding="utf-8")
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "vivipass.csv").write_bytes(regional(*GOOD))
    settings, rules = load_config(config, {"VARCO_DATA_DIR": str(tmp_path / "data")})
    return with_changes(settings, redis={"url": redis_server.url}), rules


@pytest.fixture
def loader(city: tuple[Settings, Rules]) -> Iterator[LoaderThread]:
    settings, rules = city
    assert settings.redis.url is not None
    options = WatchOptions(poll_s=0.05, history_days=100_000, max_shrink=1.0)
    thread = LoaderThread(settings, rules, settings.redis.url, options).start()
    yield thread
    thread.stop()


@pytest.fixture
async def replica(city: tuple[Settings, Rules], loader: LoaderThread) -> AsyncIterator[Client]:
    server, client, session = await start_replica(*city)
    yield client
    await session.close()
    await server.close()


async def test_feed_status_reaches_the_replica(
    city: tuple[Settings, Rules], replica: Client, tmp_path: Path
) -> None:
    async def feeds_seen() -> dict[str, Any] | None:
        status, body, _ = await replica.request("GET", "/readyz")
        return body if status == 200 and len(body.get("sources", {})) == 2 else None

    # The follower reads feed statuses every few seconds.
    info = await eventually(feeds_seen, timeout_s=15)
    vivipass, cude = info["sources"]["vivipass"], info["sources"]["cude"]
    assert (vivipass["permits"], vivipass["last_error"], vivipass["rejected"]) == (2, None, 0)
    assert "FileNotFoundError" in cude["last_error"] and cude["age_s"] is None
    assert any(w.startswith("feed cude: never synced") for w in info["warnings"])
    assert not any("vivipass" in w for w in info["warnings"])

    async def allowed() -> bool:
        return (await verdict(replica, "AB123CD"))["verdict"] == "allowed"

    await eventually(allowed)  # the regional pass, through the change stream

    status, text, _ = await replica.request("GET", "/metrics")
    assert status == 200
    assert 'varco_feed_failing{feed="cude"} 1' in text
    assert 'varco_feed_failing{feed="vivipass"} 0' in text
    assert 'varco_feed_age_seconds{feed="cude"} -1' in text
    assert "AB123CD" not in text  # no plates in metrics

    # A truncated export: refused whole, the last good data stays.
    (tmp_path / "feeds" / "vivipass.csv").write_bytes(regional(*GOOD)[:-20])

    async def failing() -> dict[str, Any] | None:
        _, body, _ = await replica.request("GET", "/readyz")
        v = body.get("sources", {}).get("vivipass", {})
        return body if v.get("last_error") else None

    info = await eventually(failing, timeout_s=15)
    assert "truncated" in info["sources"]["vivipass"]["last_error"]
    assert info["sources"]["vivipass"]["permits"] == 2  # of the last good sync
    assert await allowed()
