"""The span of publishing one event: a child of the context stored with the event.

The relay publishes from the log, long after (and in another process than) the request that
wrote the event, so the span's parent is the event's `metadata.traceparent`, never whatever
the relay itself is doing; its own traceparent becomes the message's ce_traceparent.
"""

from __future__ import annotations

from shared.contract.envelope import EventEnvelope
from shared.contract.traceparent import TRACEPARENT, parse_traceparent
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
