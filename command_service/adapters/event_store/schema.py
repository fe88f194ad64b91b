"""The event store's tables, the values it takes and returns, and the errors it raises."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

from shared.contract.envelope import EventEnvelope
from shared.infra.db import UTCDateTime

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
