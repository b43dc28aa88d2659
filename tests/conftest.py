"""Shared fixtures: the demo configuration on a temporary data directory, and index builders."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from enforcement.config.load import load_config
from enforcement.config.settings import Settings
from enforcement.core.checker import Checker
from enforcement.core.live import IndexHolder, LiveIndex
from enforcement.core.rules import Rules
from enforcement.replica.watcher import load_initial
from loader.postgres import describe
from loader.rebuild import rebuild
from loader.sqlite import PermitDB
from loader.store import PermitRow

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "examples" / "demo.toml"
# PostgreSQL cases run on a throwaway database made on this server for the test session, and
# are skipped, saying why, when none answers.
PG_ADMIN_URL = os.environ.get("VARCO_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def at(text: str) -> int:
    """Epoch seconds of an ISO 8601 instant with offset."""
    value = dt.datetime.fromisoformat(text)
    assert value.tzinfo is not None, "give test instants an offset"
    return int(value.timestamp())


@pytest.fixture
def demo(tmp_path: Path) -> tuple[Settings, Rules]:
    return load_config(DEMO_CONFIG, {"VARCO_DATA_DIR": str(tmp_path / "data")})


def publish_permits(settings: Settings, rules: Rules, permits: Iterable[PermitRow],
                    history_days: int = 100_000) -> LiveIndex:  # fmt: skip
    """Upsert permits into the settings' database, publish a snapshot, return it live."""
    with PermitDB(settings.storage.database_path) as db:
        db.upsert(permits)
        rebuild(db, rules, settings.storage.snapshot_dir, history_days, max_shrink=1.0)
    holder = IndexHolder()
    assert load_initial(holder, rules, settings.storage.snapshot_dir)
    assert holder.current is not None
    return holder.current


@pytest.fixture
def checker(demo: tuple[Settings, Rules]) -> Checker:
    settings, rules = demo
    # The tables use fixed 2026 instants: no index-age or transit-age limit applies.
    return Checker(rules, review_confidence=settings.enforcement.review_confidence,
                   max_clock_skew_s=settings.enforcement.max_clock_skew_s,
                   index_max_age_s=10**10, max_transit_age_s=10**10)  # fmt: skip


Publish = Callable[[list[PermitRow]], LiveIndex]


@pytest.fixture
def publish(demo: tuple[Settings, Rules]) -> Publish:
    settings, rules = demo
    return lambda permits: publish_permits(settings, rules, permits)


def permit(permit_id: str, plate: str, type_: str, valid_from: str, valid_to: str | None = None,
           zones: tuple[str, ...] = (), source: str = "municipal",
           plates: tuple[tuple[str, bool], ...] | None = None) -> PermitRow:  # fmt: skip
    return PermitRow(permit_id, type_, at(valid_from), at(valid_to) if valid_to else None, zones,
                     source, plates if plates is not None else ((plate, True),))  # fmt: skip


os.environ.pop("VARCO_CONFIG", None)  # tests name their configuration explicitly
os.environ.pop("DATABASE_URL", None)  # nor may a developer's shell send them to a real database
os.environ.pop("REDIS_URL", None)  # or a shared Redis: each test starts its own


def _with_path(url: str, dbname: str, query: str = "") -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + dbname,
                                                                       query=query))


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
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
                                  "LOCALE 'C.UTF-8' LOCALE_PROVIDER icu ICU_LOCALE 'und'"
                                  ).format(sql.Identifier(name)))  # fmt: skip
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
            yield _with_path(pg_database, urllib.parse.urlsplit(pg_database).path[1:],
                             f"options=-csearch_path%3D{schema}")  # fmt: skip
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
