"""What a Kafka message says about where it came from: the command's correlation id and the
trace context (ce_traceparent) the relay put in its headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from query_service.projection.events import Event
from shared.contract.traceparent import KAFKA_TRACEPARENT_HEADER, TraceParent, parse_traceparent
from shared.http.correlation import KAFKA_CORRELATION_HEADER


@dataclass(frozen=True, slots=True)
class MessageTrace:
    """The ids a message carries; None where it has none (messages written before tracing)."""

    correlation_id: str | None
    traceparent: TraceParent | None

    @property
    def trace_id(self) -> str | None:
        """The W3C trace id the message continues, if any."""
        return self.traceparent.trace_id if self.traceparent is not None else None


class MessageLogScope:
    """A message's ids for the log lines written while it is applied, read from its headers
    only if a line is written (most messages log nothing)."""

    __slots__ = ("_fields", "_record")

    def __init__(self, record: Any) -> None:
        self._record = record
        self._fields: dict[str, str] | None = None

    def log_fields(self) -> Mapping[str, str]:
        if self._fields is None:
            trace = message_trace(self._record)
            self._fields = {}
            if trace.correlation_id:
                self._fields["correlation_id"] = trace.correlation_id
            if trace.trace_id:
                self._fields["trace_id"] = trace.trace_id
        return self._fields


def message_trace(record: Any) -> MessageTrace:
    """Read both from the message's headers, in one pass."""
    correlation_id: str | None = None
    traceparent: TraceParent | None = None
    for key, value in record.headers or ():
        if not isinstance(value, bytes):
            continue
        if key == KAFKA_CORRELATION_HEADER:
            correlation_id = value.decode(errors="replace")
        elif key == KAFKA_TRACEPARENT_HEADER:
            traceparent = parse_traceparent(value)
    return MessageTrace(correlation_id, traceparent)


def process_span_attributes(record: Any, event: Event | Exception) -> dict[str, Any]:
    """OpenTelemetry messaging attributes of applying this message (its event, if parsed)."""
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.kafka.offset": record.offset,
    }
    if not isinstance(event, Exception):
        attributes["messaging.message.id"] = event.event_id
        attributes["orders.event.type"] = type(event).__name__
    return attributes
