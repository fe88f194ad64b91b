"""The portable backend: SQLAlchemy Core's statements, for databases without a module of their own.

PostgreSQL uses it with an advisory lock added (postgres.py); so does SQLite on a driver other
than the sqlite3 module, whose BEGIN IMMEDIATE is lock enough.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError, OperationalError

from command_service.adapters.event_store.backend import Backend, envelope_json, number_events
from command_service.adapters.event_store.schema import StreamAppend, events_table
from shared.contract.envelope import EventEnvelope

if TYPE_CHECKING:
    from command_service.adapters.event_store.store import EventStore

_c = events_table.c
# The log's head and one stream's version, in one round trip.
_HEAD_AND_VERSION = select(
    select(func.max(_c.position)).scalar_subquery(),
    select(func.coalesce(func.max(_c.stream_version), 0))
    .where(_c.stream_id == bindparam("stream_id"))
    .scalar_subquery(),
)
_INSERT_EVENTS = insert(events_table)


class CoreBackend(Backend[None]):
    """Appends and the feed through SQLAlchemy Core, which binds every value itself."""

    integrity_errors: tuple[type[Exception], ...] = (IntegrityError,)
    unavailable_errors: tuple[type[Exception], ...] = (OperationalError,)

    def prepare(self, appends: Sequence[StreamAppend], recorded_at: datetime) -> None:
        """Nothing: SQLAlchemy serializes the rows as it inserts them."""
        return None

    def lock_for_append(self, conn: Connection) -> None:
        """No lock of its own: the unique constraints turn a lost race into a ConcurrencyError."""

    @contextmanager
    def savepoint(self, conn: Connection) -> Iterator[None]:
        """SQLAlchemy's nested transaction: SAVEPOINT, then RELEASE or ROLLBACK TO."""
        with conn.begin_nested():
            yield

    def insert_events(
        self,
        conn: Connection,
        appends: Sequence[StreamAppend],
        recorded_at: datetime,
        prepared: None,
    ) -> list[EventEnvelope]:
        """Check each stream's version, then insert its events numbered after the log's head."""

        def head_and_version(stream_id: str) -> tuple[Any, Any]:
            head, version = conn.execute(_HEAD_AND_VERSION, {"stream_id": stream_id}).one()
            return head, version

        appended = number_events(appends, recorded_at, head_and_version)
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

    def feed_events_json(
        self, store: EventStore, after: int, limit: int
    ) -> tuple[list[str], int | None]:
        """The events decoded as every reader sees them, then encoded one by one."""
        envelopes = store.read_all(after, limit)
        last = envelopes[-1].position if envelopes else None
        return [envelope_json(e) for e in envelopes], last
