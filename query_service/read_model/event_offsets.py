"""Where each event's Kafka message is: written by the projector with its rows, read per stream.

The first copy of a message to be consumed is kept (INSERT .. ON CONFLICT DO NOTHING): a
redelivery or a relay re-publish of the same event never moves it to a later offset.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Executable, select
from sqlalchemy.dialects import postgresql, sqlite

from query_service.projection.events import ACCOUNT_STREAM_PREFIX
from query_service.read_model.bulk_sql import insert_rows_with
from query_service.read_model.tables import accounts, event_offsets, orders


class EventOffset(NamedTuple):
    """One row of event_offsets, in column order (what the bulk insert takes)."""

    stream_id: str
    version: int
    event_id: str
    topic: str
    kafka_partition: int
    kafka_offset: int


@dataclass(frozen=True)
class StreamOffsets:
    """A stream's applied version and the message of each event whose offset is known."""

    stream_id: str
    applied_version: int
    offsets: list[EventOffset]


def record_offsets(conn: Connection, rows: Sequence[EventOffset]) -> None:
    """Store the messages of consumed events, one executemany; an event seen before keeps its."""
    if rows:
        insert_rows_with(conn, _keep_first(conn.dialect.name), event_offsets, rows)


def read_stream_offsets(conn: Connection, stream_id: str) -> StreamOffsets | None:
    """The stream's applied version and known messages in version order; None if unknown."""
    account = stream_id.removeprefix(ACCOUNT_STREAM_PREFIX)
    if account != stream_id:
        applied = select(accounts.c.version).where(accounts.c.customer_id == account)
    else:
        applied = select(orders.c.version).where(orders.c.order_id == stream_id)
    version = conn.scalar(applied)
    if version is None:
        return None
    query = (
        select(event_offsets)
        .where(event_offsets.c.stream_id == stream_id, event_offsets.c.version <= version)
        .order_by(event_offsets.c.version)
    )
    return StreamOffsets(stream_id, version, [EventOffset(*row) for row in conn.execute(query)])


@functools.cache
def _keep_first(dialect: str) -> Executable:
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"event offsets need an upsert, which {dialect} lacks here")
    module: Any = sqlite if dialect == "sqlite" else postgresql
    statement: Executable = module.insert(event_offsets).on_conflict_do_nothing(
        index_elements=["stream_id", "version"]
    )
    return statement
