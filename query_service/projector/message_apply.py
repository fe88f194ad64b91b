"""One Kafka message applied inside the projector's batch: in its log scope and, with tracing
on, its consumer span; parked when it cannot be projected."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from query_service.projection.events import Event, UnprojectableEvent
from query_service.projector.applier import Outcome, ProjectionBatch
from query_service.projector.command_api import CommandApiUnavailable
from query_service.projector.message_trace import (
    MessageLogScope,
    message_trace,
    process_span_attributes,
)
from query_service.projector.parking import park_message
from shared.infra.log_context import bind_log_scope, unbind_log_scope
from shared.infra.tracing import current_tracing

log = logging.getLogger("query_service.projector")

# Outages, not bad messages: the batch rolls back and is retried, nothing is parked.
TRANSIENT_ERRORS = (CommandApiUnavailable, SQLAlchemyError)


class NeedsIsolation(Exception):
    """An unexpected error in a batch without savepoints: redo the batch with them."""


def apply_record(
    projection: ProjectionBatch, record: Any, event: Event | Exception, topic: str
) -> tuple[str, Event | None]:
    """Apply one parsed message: "applied" (with the event), "duplicate" or "parked".

    Its correlation and trace ids are on every line logged meanwhile; with tracing on, a
    consumer span continues its ce_traceparent.
    """
    token = bind_log_scope(MessageLogScope(record))
    try:
        tracing = current_tracing()
        traceparent = message_trace(record).traceparent if tracing.recording else None
        if traceparent is None:
            return _apply_message(projection, record, event)
        attributes = process_span_attributes(record, event)
        with tracing.consumer_span(f"process {topic}", traceparent, attributes):
            return _apply_message(projection, record, event)
    finally:
        unbind_log_scope(token)


def _apply_message(
    projection: ProjectionBatch, record: Any, event: Event | Exception
) -> tuple[str, Event | None]:
    try:
        if isinstance(event, Exception):
            raise event
        outcome = projection.apply(event)
    except TRANSIENT_ERRORS:
        raise
    except UnprojectableEvent as exc:
        park_message(projection.conn, record, str(exc))
        return "parked", None
    except Exception as exc:
        if not projection.isolated:
            raise NeedsIsolation() from exc  # it may have written half its rows
        # A bug must not stop every other order: park the message and go on.
        log.exception("unexpected error applying a message")
        park_message(projection.conn, record, f"unexpected error: {exc!r}")
        return "parked", None
    return outcome.value, (event if outcome is Outcome.APPLIED else None)
