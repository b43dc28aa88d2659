"""Which permit database: PostgreSQL when `database_url` is set, else SQLite."""

from __future__ import annotations

from enforcement.config.settings import Settings

from .sqlite import PermitDB
from .store import PermitStore


def open_db(settings: Settings, *, check_schema: bool = True) -> PermitStore:
    """The configured permit database: PostgreSQL if `database_url` is set, else SQLite.

    A PostgreSQL database with an older schema raises SchemaError unless `check_schema` is
    false (`varco migrate`); SQLite migrates on open.
    """
    if settings.database_url:
        from .postgres import PgPermitDB  # psycopg loads only where PostgreSQL is used

        return PgPermitDB(settings.database_url, check_schema=check_schema)
    return PermitDB(settings.storage.database_path)
