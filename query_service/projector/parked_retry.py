"""An operator's retry or discard of a parked event, each recorded in the audit log.

A retry parses the stored message again and applies it through the projector's own path
(EventApplier, isolated: a savepoint per event) in one transaction with the parked row's
removal and the audit line. The stream row's version is claimed exactly as for a live event,
so an event the projector has applied since (a redelivery, a republish) is a duplicate and
changes nothing, and a retry racing the projector cannot apply it twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, RowMapping

from query_service.projection.events import Event, UnprojectableEvent
from query_service.projection.parsing import parse_message
from query_service.projector.applier import EventApplier
from query_service.projector.message_apply import TRANSIENT_ERRORS
from query_service.read_model.event_offsets import EventOffset, record_offsets
from query_service.read_model.parked import (
    OperatorAction,
    lock_parked_event,
    note_failed_retry,
    record_action,
    remove_parked_event,
)
from shared.contract.principal import Principal
from shared.infra.db import write_transaction


class ParkedEventNotFound(Exception):
    """No parked event has that id (never parked, or already retried or discarded)."""


@dataclass(frozen=True)
class ActionResult:
    """How the action went and its audit line."""

    parked_id: int
    action: str
    outcome: str  # applied, duplicate, failed or discarded
    audit_id: int
    event_id: str | None
    stream_id: str | None
    error: str | None = None


def retry_parked(
    engine: Engine, applier: EventApplier, parked_id: int, who: Principal, reason: str | None
) -> ActionResult:
    """Apply the parked event again; a failure keeps the row (with the new error) and says why.

    Raises ParkedEventNotFound, or CommandApiUnavailable / a database error (nothing changed).
    """
    error: str | None = None
    with write_transaction(engine) as conn:
        row = lock_parked_event(conn, parked_id)
        if row is None:
            raise ParkedEventNotFound(parked_id)
        event_id, stream_id = row["event_id"], row["order_id"]
        try:
            with conn.begin_nested(), applier.batch(conn, isolated=True) as projection:
                event = parse_message(row["message_value"])
                event_id, stream_id = event.event_id, event.stream_id
                outcome = projection.apply(event).value
                if row["kafka_offset"] is not None:  # parked from Kafka, not by a gap repair
                    record_offsets(conn, [_offset_of(row, event)])
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:
            # The savepoint rolled back whatever the event wrote; only the audit remains. Any
            # error, as the projector parks any: a bug must not make the row unretryable.
            error = str(exc) if isinstance(exc, UnprojectableEvent) else f"unexpected: {exc!r}"
            outcome = "failed"
            note_failed_retry(conn, parked_id, error)
        else:
            remove_parked_event(conn, parked_id)
        audit_id = record_action(
            conn,
            _audit(parked_id, "retry", outcome, who, reason, event_id, stream_id, error),
        )
    return ActionResult(parked_id, "retry", outcome, audit_id, event_id, stream_id, error)


def discard_parked(
    engine: Engine, parked_id: int, who: Principal, reason: str | None
) -> ActionResult:
    """Delete the parked event without applying it (the audit line keeps what it was)."""
    with write_transaction(engine) as conn:
        row = lock_parked_event(conn, parked_id)
        if row is None:
            raise ParkedEventNotFound(parked_id)
        remove_parked_event(conn, parked_id)
        event_id, stream_id = row["event_id"], row["order_id"]
        detail = f"error when discarded: {row['error']}"
        audit_id = record_action(
            conn,
            _audit(parked_id, "discard", "discarded", who, reason, event_id, stream_id, detail),
        )
    return ActionResult(parked_id, "discard", "discarded", audit_id, event_id, stream_id)


def _offset_of(row: RowMapping, event: Event) -> EventOffset:
    return EventOffset(
        event.stream_id,
        event.version,
        event.event_id,
        row["topic"],
        row["kafka_partition"],
        row["kafka_offset"],
    )


def _audit(
    parked_id: int,
    action: str,
    outcome: str,
    who: Principal,
    reason: str | None,
    event_id: str | None,
    stream_id: str | None,
    detail: str | None,
) -> OperatorAction:
    return OperatorAction(
        parked_id=parked_id,
        action=action,
        outcome=outcome,
        by_sub=who.sub,
        by_iss=who.iss,
        reason=reason,
        event_id=event_id,
        stream_id=stream_id,
        detail=detail,
    )
