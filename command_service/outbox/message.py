"""The Kafka message for one event of the log: what the relay sends and a republish repeats.

Keyed by stream id (so a stream's events share a partition and keep their order), the
envelope's JSON as value, CloudEvents binary-mode headers plus the correlation id.
"""

from __future__ import annotations

from typing import Any

from shared.contract.envelope import EventEnvelope
from shared.http.correlation import KAFKA_CORRELATION_HEADER


def message_headers(envelope: EventEnvelope, source: str) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode headers plus the command's correlation id, when it has one."""
    headers = envelope.cloudevents_headers(source)
    correlation_id = envelope.metadata.get("correlation_id")
    if isinstance(correlation_id, str) and correlation_id:
        headers.append((KAFKA_CORRELATION_HEADER, correlation_id.encode()))
    return headers


def send_event(producer: Any, topic: str, envelope: EventEnvelope, source: str) -> Any:
    """Hand one event's message to a KafkaProducer; the future of its acknowledgement."""
    return producer.send(
        topic,
        key=envelope.stream_id.encode(),
        value=envelope.to_json(),
        headers=message_headers(envelope, source),
    )
