"""Parking a Kafka message: stored in parked_events with its topic, partition, offset, key,
value and headers, for an operator to look at; the projector goes on with the rest.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection

from query_service.projector.batch_report import correlation_id
from query_service.read_model.order_writer import ParkedEvent, park

log = logging.getLogger("query_service.projector")


def park_message(conn: Connection, record: Any, error: str) -> None:
    """Keep a Kafka message the projection cannot apply, with where it was read, and log it."""
    log.error(
        "parked a message the projection cannot apply",
        extra={
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "correlation_id": correlation_id(record),
            "error": error,
        },
    )
    key = record.key
    park(
        conn,
        ParkedEvent(
            origin="kafka",
            error=error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            value=record.value,
            headers=list(record.headers or ()),
            stream_id=key.decode(errors="replace") if isinstance(key, bytes) else None,
        ),
    )
