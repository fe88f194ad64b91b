"""An event's trace context on the relay's side: the span of publishing it, and its ids for
the log lines about it.

The relay publishes from the log, long after (and in another process than) the request that
wrote the event, so the span's parent is the event's `metadata.traceparent`, never whatever
the relay itself is doing; its own traceparent becomes the message's ce_traceparent.
"""

from __future__ import annotations

from shared.contract.envelope import EventEnvelope
from shared.contract.traceparent import TRACEPARENT, parse_traceparent
from shared.infra.log_context import LogIds
from shared.infra.tracing import ProducerSpan, Tracing


def publish_span(tracing: Tracing, topic: str, event: EventEnvelope) -> ProducerSpan:
    """Start the producer span of sending `event` to `topic`; end it with the broker's answer.

    An event stored without a traceparent (written before tracing) gets no span, so its
    message keeps having no ce_traceparent.
    """
    stored = event.metadata.get(TRACEPARENT)
    parent = parse_traceparent(stored) if isinstance(stored, str) else None
    if parent is None:
        return ProducerSpan()
    return tracing.start_producer_span(
        f"send {topic}",
        parent,
        {
            "messaging.system": "kafka",
            "messaging.operation.type": "send",
            "messaging.destination.name": topic,
            "messaging.message.id": event.event_id,
            "messaging.kafka.message.key": event.stream_id,
            "orders.event.type": event.type,
            "orders.event.position": event.position,
        },
    )


def event_log_ids(event: EventEnvelope) -> LogIds:
    """The event's correlation and trace ids, for a log line about it."""
    correlation_id = event.metadata.get("correlation_id")
    stored = event.metadata.get(TRACEPARENT)
    parent = parse_traceparent(stored) if isinstance(stored, str) else None
    return LogIds(
        correlation_id if isinstance(correlation_id, str) else None,
        parent.trace_id if parent is not None else None,
    )
