"""Fixtures used everywhere: the demo configuration on a temporary data directory, a checker
and a publisher of permits over it, a PostgreSQL database for the session; and the live
fixtures: a real Redis server of our own per test (killable), the loader daemon in a thread,
and a replica following that Redis on loopback. Their helpers are in tests/support/."""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from enforcement.config.load import load_config
from enforcement.config.settings import Settings, with_changes
from enforcement.core.checker import Checker
from enforcement.core.rules import Rules
from enforcement.replica.redis_server import EmbeddedRedis
from loader.postgres import PgPermitDB, describe
from loader.watch import LoaderThread, WatchOptions

from .support.api import Client, start_replica
from .support.common import DEMO_CONFIG, Publish, publish_permits

# PostgreSQL cases run on a throwaway database made on this server for the test session, and
# are skipped, saying why, when none answers.
PG_ADMIN_URL = os.environ.get("VARCO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Settings, Rules]:
    settings, rules = load_config(DEMO_CONFIG, {"VARCO_DATA_DIR": str(tmp_path / "data")})
    # A test's server shares its process, often its event loop, with the test (hypothesis
    # drawing examples, a client): to admission control that is a loop running late, and it
    # would shed (503) at random on a loaded host. Its bound is tested where it is set
    # (tests/http/test_admission.py); elsewhere it is out of the way.
    return with_changes(settings, server={"max_queue_wait_s": 10.0}), rules


@pytest.fixture
def checker(demo: tuple[Settings, Rules]) -> Checker:
    settings, rules = demo
    # The tables use fixed 2026 instants: no index-age or transit-age limit applies.
    return Checker(
        rules,
        review_confidence=settings.enforcement.review_confidence,
        max_clock_skew_s=settings.enforcement.max_clock_skew_s,
        index_max_age_s=10**10,
        max_transit_age_s=10**10,
        max_delivery_delay_s=10**10,
    )


@pytest.fixture
def publish(demo: tuple[Settings, Rules]) -> Publish:
    settings, rules = demo
    return lambda permits: publish_permits(settings, rules, permits)


os.environ.pop("VARCO_CONFIG", None)  # tests name their configuration explicitly
os.environ.pop("DATABASE_URL", None)  # nor may a developer's shell send them to a real database
os.environ.pop("REDIS_URL", None)  # or a shared Redis: each test starts its own


def _with_path(url: str, dbname: str, query: str = "") -> str:
    return urllib.parse.urlunsplit(
        urllib.parse.urlsplit(url)._replace(path="/" + dbname, query=query)
    )


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The URL of a database made for this test session, dropped at its end.

    Its default collation is ICU's linguistic `und` where the server has ICU ("_ a B é Z"),
    so an ORDER BY that forgets COLLATE "C" shows up.
    """
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable at {describe(PG_ADMIN_URL)}: {exc}".strip())
    name = f"varco_test_{secrets.token_hex(4)}"
    with admin:
        try:
            admin.execute(
                sql.SQL(
                    "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                    "LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'und'"
                ).format(sql.Identifier(name))
            )
        except psycopg.Error:  # no ICU, or PostgreSQL before 15
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield _with_path(PG_ADMIN_URL, name)
        finally:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def pg_url(pg_database: str) -> Iterator[str]:
    """A URL whose connections work in a schema of their own (empty: not migrated)."""
    schema = f"t_{secrets.token_hex(4)}"
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield _with_path(
                pg_database,
                urllib.parse.urlsplit(pg_database).path[1:],
                f"options=-csearch_path%3D{schema}",
            )
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


# -- live: a real Redis of our own, the loader daemon, a replica following them ----------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def live_settings(
    request: pytest.FixtureRequest, demo: tuple[Settings, Rules], redis_server: EmbeddedRedis
) -> Settings:
    """The demo settings following our Redis, on each permit database backend."""
    settings, _ = demo
    database_url = None
    if request.param == "postgresql":
        database_url = request.getfixturevalue("pg_url")
        with PgPermitDB(database_url, check_schema=False) as db:
            db.migrate()
    return with_changes(settings, redis={"url": redis_server.url}, database_url=database_url)


@pytest.fixture
def loader(live_settings: Settings, demo: tuple[Settings, Rules]) -> Iterator[LoaderThread]:
    options = WatchOptions(poll_s=0.05, history_days=100_000, max_shrink=1.0)
    assert live_settings.redis.url is not None
    thread = LoaderThread(live_settings, demo[1], live_settings.redis.url, options).start()
    yield thread
    thread.stop()


@pytest.fixture
async def replica(live_settings: Settings, demo: tuple[Settings, Rules]) -> AsyncIterator[Client]:
    server, client, session = await start_replica(live_settings, demo[1])
    yield client
    await session.close()
    await server.close()
