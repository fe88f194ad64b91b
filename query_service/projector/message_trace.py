"""What a Kafka message says about where it came from: the command's correlation id and the
trace context (ce_traceparent) the relay put in its headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from query_service.projection.events import Event
from shared.contract.traceparent import (
    KAFKA_TRACEPARENT_HEADER,
    TRACEPARENT,
    TraceParent,
    parse_traceparent,
)
from shared.http.correlation import CORRELATION_HEADER, KAFKA_CORRELATION_HEADER
from shared.infra.log_context import current_log_scope
from shared.infra.tracing import current_tracing


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

    __slots__ = ("_fields", "_record", "_trace")

    def __init__(self, record: Any) -> None:
        self._record = record
        self._trace: MessageTrace | None = None
        self._fields: dict[str, str] | None = None

    def trace(self) -> MessageTrace:
        """The message's ids (read from its headers once)."""
        if self._trace is None:
            self._trace = message_trace(self._record)
        return self._trace

    def log_fields(self) -> Mapping[str, str]:
        if self._fields is None:
            trace = self.trace()
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


def outgoing_trace_headers() -> dict[str, str]:
    """Headers that continue the trace of the message being applied in a call it makes (the
    gap repair's GET to the command API): its correlation id, and as `traceparent` the current
    span (the consumer span, with tracing on) or else the message's own ce_traceparent."""
    scope = current_log_scope()
    if not isinstance(scope, MessageLogScope):
        return {}
    trace = scope.trace()
    headers = {}
    if trace.correlation_id:
        headers[CORRELATION_HEADER] = trace.correlation_id
    parent = current_tracing().current_span() or trace.traceparent
    if parent is not None:
        headers[TRACEPARENT] = parent.header()
    return headers


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
