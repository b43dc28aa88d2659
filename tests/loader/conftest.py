"""The permit database of each backend (`open_store`), and a scripted HTTP feed server
(`feed`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loader.postgres import PgPermitDB
from loader.sqlite import PermitDB

from ..support.feeds import Feed, FeedHandler, FeedServer
from ..support.store import Opener


@pytest.fixture(params=["sqlite", "postgresql"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens a new connection to one (migrated) permit database of the backend."""
    if request.param == "sqlite":
        path = tmp_path / "permits.sqlite"
        return lambda: PermitDB(path)
    url = request.getfixturevalue("pg_url")
    with PgPermitDB(url, check_schema=False) as db:
        db.migrate()
    return lambda: PgPermitDB(url)


@pytest.fixture
def feed() -> Iterator[Feed]:
    server = FeedServer(("127.0.0.1", 0), FeedHandler)
    server.feed = Feed(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.feed
    finally:
        server.feed.stop.set()  # release handlers still sleeping
        server.shutdown()
        server.server_close()
        thread.join()
