"""What differs between databases in the event store: the Backend interface, and the helpers
its implementations share.

One implementation a module: sqlite.py (the sqlite3 cursor), postgres.py (an advisory lock over
core.py's statements) and core.py (SQLAlchemy Core, for any other database). store.backend_for
picks one from the engine's dialect, once per EventStore.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from command_service.adapters.event_store.schema import (
    ConcurrencyError,
    EventStoreUnavailable,
    StreamAppend,
)
from shared.contract.envelope import EventEnvelope

if TYPE_CHECKING:
    from command_service.adapters.event_store.store import EventStore

Prepared = TypeVar("Prepared")


class Backend(Protocol[Prepared]):
    """How one kind of database writes the log and serves its feed.

    `Prepared` is what prepare() computes before the append's transaction for insert_events().
    """

    # What an insert raises for a duplicate key (a writer that slipped in, or a reused event id).
    integrity_errors: tuple[type[Exception], ...]
    # What the database raises when it refuses: locked too long, read-only, disk full, down.
    unavailable_errors: tuple[type[Exception], ...]

    def prepare(self, appends: Sequence[StreamAppend], recorded_at: datetime) -> Prepared:
        """Work that needs no lock, done before the transaction (others wait while it is held)."""
        ...

    def lock_for_append(self, conn: Connection) -> None:
        """Serialize appends, so positions are handed out gapless and in commit order."""
        ...

    def savepoint(self, conn: Connection) -> AbstractContextManager[None]:
        """A savepoint around one request of a batch: rolled back if the block raises."""
        ...

    def insert_events(
        self,
        conn: Connection,
        appends: Sequence[StreamAppend],
        recorded_at: datetime,
        prepared: Prepared,
    ) -> list[EventEnvelope]:
        """Check each stream's version, then insert its events numbered after the log's head."""
        ...

    def feed_events_json(
        self, store: EventStore, after: int, limit: int
    ) -> tuple[list[str], int | None]:
        """Up to `limit` events after position `after` as GET /events serves each, and the
        position of the last one (None if there are none)."""
        ...


def number_events(
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
            position = scalar_int(head)
        actual = scalar_int(actual)
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


def row_to_envelope(row: Any) -> EventEnvelope:
    """An events-table row (a mapping) as the envelope it stores."""
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


def envelope_json(envelope: EventEnvelope) -> str:
    """One event as GET /events serves it: EventEnvelope.to_dict, keys sorted, compact, ASCII."""
    return json.dumps(envelope.to_dict(), ensure_ascii=True, sort_keys=True, separators=(",", ":"))


def unavailable(exc: Exception) -> EventStoreUnavailable:
    """EventStoreUnavailable with the driver's own message, whether SQLAlchemy wrapped it or not."""
    return EventStoreUnavailable(str(exc.orig) if isinstance(exc, DBAPIError) else str(exc))


def scalar_int(value: Any) -> int:
    """A SELECT max(...) result as an int, 0 for the NULL of an empty table."""
    return int(value or 0)
