"""The console's fixtures: one headless Chromium for the session (skipped, saying why, when
none can be had), and per test a fresh service over the demo permits with Redis and the
loader, served from a thread (tests/support/console.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from enforcement.config.settings import Settings, with_changes
from enforcement.core.rules import Rules
from enforcement.replica.redis_server import EmbeddedRedis

from ..support.api import PERMITS, upsert
from ..support.browser import Browser, unavailable
from ..support.console import ServerThread, start_loader, wait_ready


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"console browser tests: {reason}")
    driver = Browser()
    yield driver
    driver.quit()


@dataclass
class Console:
    base: str
    settings: Settings
    browser: Browser


@pytest.fixture
def console(
    demo: tuple[Settings, Rules], redis_server: EmbeddedRedis, browser: Browser
) -> Iterator[Console]:
    settings, rules = demo
    settings = with_changes(settings, redis={"url": redis_server.url})
    revision = upsert(settings, *PERMITS)
    loader = start_loader(settings, rules)
    server = ServerThread(settings, rules).start()
    try:
        wait_ready(server.base, revision)
        browser.fresh(server.base)
        yield Console(server.base, settings, browser)
    finally:
        server.stop()
        loader.stop()
