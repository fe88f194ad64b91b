"""Database engines for SQLite (the embedded default) and any other SQLAlchemy URL.

SQLite runs in WAL mode with a busy timeout so several gunicorn workers and the relay can
share one file; writers that must serialize take its write lock (write_lock.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeDecorator

from shared.infra.schema_columns import add_missing_columns
from shared.infra.write_lock import (
    SQLITE_BUSY_TIMEOUT_MS,
    WRITE_LOCK_SUFFIX,
    DedicatedWriteConnection,
    execute_on_driver,
    register_write_lock,
    write_lock,
    write_lock_path,
    write_transaction,
)

# Re-exported: callers take the engine's whole toolkit from here.
__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "WRITE_LOCK_SUFFIX",
    "DedicatedWriteConnection",
    "UTCDateTime",
    "create_database_engine",
    "create_tables",
    "sqlite_datetime_text",
    "write_lock",
    "write_lock_path",
    "write_transaction",
]


def create_database_engine(url: str, sqlite_synchronous: str = "FULL") -> Engine:
    """Create an engine; for SQLite, make its folder and set WAL, synchronous and busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    )
    _configure_sqlite(engine, sqlite_synchronous)
    register_write_lock(engine, database)
    return engine


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so we can say BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # The busy timeout first: switching to WAL needs a lock that a process starting at
        # the same moment may hold, and without the timeout that would fail at once.
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # The sqlite3 module no longer begins for us (see _on_connect), so reads say BEGIN
        # here; inside write_transaction the driver is already in its BEGIN IMMEDIATE.
        driver = conn.connection.driver_connection
        if driver.in_transaction:  # type: ignore[union-attr]
            return
        execute_on_driver(driver, "BEGIN")


def sqlite_datetime_text(value: datetime) -> str:
    """How UTCDateTime stores a datetime in SQLite, for rows written on the driver's cursor."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given where UTC is required")
    # SQLAlchemy's SQLite DATETIME storage format, microseconds always written: text
    # comparisons and its parser see the same shape whichever path wrote the row.
    naive = value.astimezone(UTC).replace(tzinfo=None)
    return naive.isoformat(sep=" ", timespec="microseconds")


# Arbitrary constant naming the PostgreSQL advisory lock that serializes schema creation.
_SCHEMA_LOCK_KEY = 7_311_002


def create_tables(engine: Engine, metadata: MetaData) -> None:
    """Create missing tables and add missing nullable columns; safe when several processes
    start against one database at once."""
    with write_transaction(engine) as conn:
        # The write lock (SQLite) or an advisory lock (PostgreSQL) turns "check, then create"
        # into one step, so two processes starting together do not both try to create.
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        metadata.create_all(conn, checkfirst=True)
        add_missing_columns(conn, metadata)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
