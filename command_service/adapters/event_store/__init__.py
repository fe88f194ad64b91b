"""The append-only event log (SQLAlchemy Core): the source of truth of the command side.

Positions are assigned inside the append transaction while it holds the write lock, so they
are gapless and in commit order on every backend. The relay depends on that: it publishes
"everything after the last published position" and must never skip an event that commits late.

The statements are built once, not per call (rebuilding them was a large share of an append's
CPU). On SQLite the append's SELECT and INSERT go straight to the sqlite3 cursor with rows
serialized here exactly as SQLAlchemy would (the same JSON and DATETIME text), so rows read
back the same whichever path wrote them; other databases take SQLAlchemy Core's path.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError, OperationalError

from shared.contract.envelope import EventEnvelope
from shared.infra.db import UTCDateTime, create_tables, sqlite_datetime_text, write_transaction

log = logging.getLogger("command_service.event_store")

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    Column(
        "position",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    # Wide enough for "account:" + a 64-character customer id.
    Column("stream_id", String(100), nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("data", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    Column("metadata", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    # Also the index that serves stream reads.
    UniqueConstraint("stream_id", "stream_version", name="uq_events_stream_version"),
)

# A cache of aggregate state: losing it costs only a longer load, so it is written after the
# append, outside its transaction, and ignored when its format is not the current one.
snapshots_table = Table(
    "snapshots",
    metadata,
    Column("stream_id", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("state_format", String(50), nullable=False),
    Column("state", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
)


class AppendHook(Protocol):
    """Work done inside an append's transaction (see EventStore.append_streams)."""

    def before(self, conn: Connection) -> None:
        """Runs first, under the write lock; raise to append nothing."""

    def after(self, conn: Connection, appended: list[EventEnvelope]) -> None:
        """Runs after the events are inserted, before the commit; raise to roll back."""


@dataclass(frozen=True)
class Snapshot:
    """An aggregate's state as of a stream version, in a named serialization format."""

    stream_id: str
    version: int
    state_format: str
    state: dict[str, Any]


# Arbitrary constant naming the PostgreSQL advisory lock that serializes appends.
_APPEND_LOCK_KEY = 7_311_001
_LOCK_FOR_APPEND = text("SELECT pg_advisory_xact_lock(:key)")

_c = events_table.c
# The log's head and one stream's version, in one round trip.
_HEAD_AND_VERSION = select(
    select(func.max(_c.position)).scalar_subquery(),
    select(func.coalesce(func.max(_c.stream_version), 0))
    .where(_c.stream_id == bindparam("stream_id"))
    .scalar_subquery(),
)
_HEAD = select(func.max(_c.position))
_STREAM_VERSION = select(func.coalesce(func.max(_c.stream_version), 0)).where(
    _c.stream_id == bindparam("stream_id")
)
_INSERT_EVENTS = insert(events_table)
_LOAD_STREAM = (
    select(events_table)
    .where(_c.stream_id == bindparam("stream_id"))
    .where(_c.stream_version > bindparam("after_version"))
    .order_by(_c.stream_version)
)
_READ_ALL = (
    select(events_table)
    .where(_c.position > bindparam("after_position"))
    .order_by(_c.position)
    .limit(bindparam("limit", type_=Integer))
)
_PING = select(func.count()).select_from(events_table).limit(1)

# The same two statements for the sqlite3 cursor (qmark parameters).
_SQLITE_HEAD_AND_VERSION = (
    "SELECT (SELECT max(position) FROM events),"
    " (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?)"
)
_SQLITE_INSERT = (
    "INSERT INTO events (position, event_id, stream_id, stream_version, event_type,"
    " schema_version, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class ConcurrencyError(Exception):
    """A stream's version is not the one the append expected: someone else wrote first."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(f"stream {stream_id!r} is at version {actual}, expected {expected}")
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class EventStoreUnavailable(Exception):
    """The database refused the operation (locked too long, read-only, disk full, down)."""


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended: type, JSON data and metadata."""

    event_type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    schema_version: int = 1
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class StreamAppend:
    """Events for one stream, to be written only if the stream is at `expected_version`."""

    stream_id: str
    expected_version: int
    events: Sequence[NewEvent]


class EventStore:
    """Appends to and reads from the events table."""

    def __init__(
        self, engine: Engine, on_appended: Callable[[list[EventEnvelope]], None] | None = None
    ) -> None:
        self.engine = engine
        # Told of each append once it committed (the command API counts events with it).
        self.on_appended = on_appended
        # SQLAlchemy's per-statement work was more than half of an append's CPU on SQLite;
        # the sqlite3 module's cursor is the driver whose row format we reproduce exactly.
        self._sqlite_cursor = (
            engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite"
        )

    def create_schema(self) -> None:
        """Create the table if missing (idempotent, safe from several processes)."""
        create_tables(self.engine, metadata)

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        hook: AppendHook | None = None,
    ) -> list[EventEnvelope]:
        """Append events to one stream atomically if it is at `expected_version`."""
        return self.append_streams([StreamAppend(stream_id, expected_version, events)], hook)

    def append_streams(
        self, appends: Sequence[StreamAppend], hook: AppendHook | None = None
    ) -> list[EventEnvelope]:
        """Append to several streams in one transaction: all events are written, or none.

        `hook` runs inside that transaction, under the write lock: before the version checks
        and after the insert (to record something that must commit with the events or not).
        """
        if not any(a.events for a in appends):
            return []
        # Everything that needs no lock is done before taking it: every other writer waits
        # for as long as the write lock is held.
        recorded_at = datetime.now(UTC)
        serialized = _serialize_for_sqlite(appends, recorded_at) if self._sqlite_cursor else None
        try:
            with write_transaction(self.engine) as conn:
                self._lock_for_append(conn)
                if hook is not None:
                    hook.before(conn)
                if serialized is not None:
                    appended = _insert_on_sqlite_cursor(conn, appends, recorded_at, serialized)
                else:
                    appended = _insert_with_core(conn, appends, recorded_at)
                if hook is not None:
                    hook.after(conn, list(appended))
        except (IntegrityError, sqlite3.IntegrityError) as exc:
            # The version check runs under the write lock, so this is a backstop for backends
            # where another writer slipped in (or a reused event id); report it as a conflict.
            first = appends[0]
            raise ConcurrencyError(
                first.stream_id, first.expected_version, self.stream_version(first.stream_id)
            ) from exc
        except OperationalError as exc:
            raise EventStoreUnavailable(str(exc.orig)) from exc
        except sqlite3.OperationalError as exc:
            raise EventStoreUnavailable(str(exc)) from exc
        if self.on_appended is not None:
            try:
                self.on_appended(appended)
            except Exception:
                # Committed is committed: counting it must not turn the append into an error.
                log.exception("on_appended failed", extra={"count": len(appended)})
        return appended

    def load_stream(self, stream_id: str, after_version: int = 0) -> list[EventEnvelope]:
        """The events of one stream in version order."""
        return self._read(_LOAD_STREAM, {"stream_id": stream_id, "after_version": after_version})

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        """Up to `limit` events of the whole log after a position, in log order."""
        return self._read(_READ_ALL, {"after_position": after_position, "limit": limit})

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The stream's latest snapshot, if one was taken."""
        query = select(snapshots_table).where(snapshots_table.c.stream_id == stream_id)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except OperationalError as exc:
            raise EventStoreUnavailable(str(exc.orig)) from exc
        if row is None:
            return None
        return Snapshot(row["stream_id"], row["version"], row["state_format"], row["state"])

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot unless a newer one is already there (writers may race)."""
        values = {
            "version": snapshot.version,
            "state_format": snapshot.state_format,
            "state": snapshot.state,
            "taken_at": datetime.now(UTC),
        }
        table = snapshots_table
        with write_transaction(self.engine) as conn:
            updated = conn.execute(
                update(table)
                .where(table.c.stream_id == snapshot.stream_id)
                .where(table.c.version < snapshot.version)
                .values(**values)
            )
            if (
                updated.rowcount == 0
                and conn.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.stream_id == snapshot.stream_id)
                )
                == 0
            ):
                conn.execute(insert(table).values(stream_id=snapshot.stream_id, **values))

    def head_position(self) -> int:
        """The position of the newest event (0 for an empty log)."""
        with self.engine.connect() as conn:
            return _scalar_int(conn.scalar(_HEAD))

    def stream_version(self, stream_id: str) -> int:
        """The version of a stream (0 if it has no events)."""
        with self.engine.connect() as conn:
            return _scalar_int(conn.scalar(_STREAM_VERSION, {"stream_id": stream_id}))

    def ping(self) -> None:
        """Raise EventStoreUnavailable unless the database answers a query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(_PING)
        except OperationalError as exc:
            raise EventStoreUnavailable(str(exc.orig)) from exc

    def _read(self, query: Any, params: dict[str, Any]) -> list[EventEnvelope]:
        try:
            with self.engine.connect() as conn:
                return [_row_to_envelope(row._mapping) for row in conn.execute(query, params)]
        except OperationalError as exc:
            raise EventStoreUnavailable(str(exc.orig)) from exc

    def _lock_for_append(self, conn: Connection) -> None:
        # SQLite already holds its single write lock (BEGIN IMMEDIATE). Elsewhere, serialize
        # appends so positions are handed out in commit order without gaps.
        if conn.dialect.name == "postgresql":
            conn.execute(_LOCK_FOR_APPEND, {"key": _APPEND_LOCK_KEY})


def _serialize_for_sqlite(
    appends: Sequence[StreamAppend], recorded_at: datetime
) -> list[tuple[str, str, str]]:
    # What SQLAlchemy's JSON and UTCDateTime would bind on SQLite: json.dumps and its
    # DATETIME text, so rows read back alike whichever path wrote them.
    recorded = sqlite_datetime_text(recorded_at)
    return [
        (json.dumps(new.data), json.dumps(new.metadata), recorded)
        for append in appends
        for new in append.events
    ]


def _insert_on_sqlite_cursor(
    conn: Connection,
    appends: Sequence[StreamAppend],
    recorded_at: datetime,
    serialized: list[tuple[str, str, str]],
) -> list[EventEnvelope]:
    driver: Any = conn.connection.driver_connection

    def head_and_version(stream_id: str) -> tuple[Any, Any]:
        row: tuple[Any, Any] = driver.execute(_SQLITE_HEAD_AND_VERSION, (stream_id,)).fetchone()
        return row

    appended = _envelopes(appends, recorded_at, head_and_version)
    rows = [
        (e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, *encoded)
        for e, encoded in zip(appended, serialized, strict=True)
    ]
    if len(rows) == 1:
        driver.execute(_SQLITE_INSERT, rows[0])
    else:
        driver.executemany(_SQLITE_INSERT, rows)
    return appended


def _insert_with_core(
    conn: Connection, appends: Sequence[StreamAppend], recorded_at: datetime
) -> list[EventEnvelope]:
    def head_and_version(stream_id: str) -> tuple[Any, Any]:
        head, version = conn.execute(_HEAD_AND_VERSION, {"stream_id": stream_id}).one()
        return head, version

    appended = _envelopes(appends, recorded_at, head_and_version)
    rows = [
        {
            "position": e.position,
            "event_id": e.event_id,
            "stream_id": e.stream_id,
            "stream_version": e.version,
            "event_type": e.type,
            "schema_version": e.schema_version,
            "data": e.data,
            "metadata": e.metadata,
            "recorded_at": e.occurred_at,
        }
        for e in appended
    ]
    conn.execute(_INSERT_EVENTS, rows)
    return appended


def _envelopes(
    appends: Sequence[StreamAppend],
    recorded_at: datetime,
    head_and_version: Callable[[str], tuple[Any, Any]],
) -> list[EventEnvelope]:
    """The events as they will be stored, numbered after the log's head; runs under the write
    lock and raises ConcurrencyError if a stream is not at its expected version."""
    position: int | None = None
    appended: list[EventEnvelope] = []
    for append in appends:
        head, actual = head_and_version(append.stream_id)
        if position is None:
            position = _scalar_int(head)
        actual = _scalar_int(actual)
        if actual != append.expected_version:
            raise ConcurrencyError(append.stream_id, append.expected_version, actual)
        for offset, new in enumerate(append.events, start=1):
            position += 1
            appended.append(
                EventEnvelope(
                    event_id=new.event_id,
                    type=new.event_type,
                    stream_id=append.stream_id,
                    version=actual + offset,
                    position=position,
                    occurred_at=recorded_at,
                    schema_version=new.schema_version,
                    data=new.data,
                    metadata=new.metadata,
                )
            )
    return appended


def _row_to_envelope(row: Any) -> EventEnvelope:
    return EventEnvelope(
        event_id=row["event_id"],
        type=row["event_type"],
        stream_id=row["stream_id"],
        version=row["stream_version"],
        position=row["position"],
        occurred_at=row["recorded_at"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=row["metadata"],
    )


def _scalar_int(value: Any) -> int:
    return int(value or 0)
