"""The Kafka message for one event of the log: what the relay sends and a republish repeats.

Keyed by stream id (so a stream's events share a partition and keep their order), the
envelope's JSON as value, CloudEvents binary-mode headers plus the correlation id, the
CloudEvents auth context extension (who caused the event, from its stored principal) and the
distributed-tracing extension (`ce_traceparent`, from its stored traceparent).
"""

from __future__ import annotations

from typing import Any

from shared.contract.envelope import EventEnvelope
from shared.contract.traceparent import KAFKA_TRACEPARENT_HEADER, TRACEPARENT
from shared.http.correlation import KAFKA_CORRELATION_HEADER

# The authcontext extension's values (cloudevents/spec, extensions/authcontext.md): a token
# with a customer is an end user of the application, one without is a service or staff tool.
AUTHTYPE_HEADER = "ce_authtype"
AUTHID_HEADER = "ce_authid"
APP_USER = "app_user"
SERVICE_ACCOUNT = "service_account"
UNKNOWN = "unknown"


def message_headers(
    envelope: EventEnvelope, source: str, traceparent: str | None = None
) -> list[tuple[str, bytes]]:
    """CloudEvents binary-mode headers, the auth context, the command's correlation id and
    ce_traceparent: `traceparent` (the publish span's) if given, else the event's stored one;
    none for an event stored without one (written before tracing)."""
    headers = envelope.cloudevents_headers(source)
    headers.extend(auth_context_headers(envelope.metadata))
    correlation_id = envelope.metadata.get("correlation_id")
    if isinstance(correlation_id, str) and correlation_id:
        headers.append((KAFKA_CORRELATION_HEADER, correlation_id.encode()))
    if traceparent is None:
        stored = envelope.metadata.get(TRACEPARENT)
        traceparent = stored if isinstance(stored, str) and stored else None
    if traceparent is not None:
        headers.append((KAFKA_TRACEPARENT_HEADER, traceparent.encode()))
    return headers


def auth_context_headers(metadata: dict[str, Any]) -> list[tuple[str, bytes]]:
    """ce_authtype always; ce_authid (the token's sub) when the event names its principal.

    Events written before authentication have no principal: their authtype is `unknown`.
    """
    principal = metadata.get("principal")
    sub = principal.get("sub") if isinstance(principal, dict) else None
    if not isinstance(principal, dict) or not isinstance(sub, str) or not sub:
        return [(AUTHTYPE_HEADER, UNKNOWN.encode())]
    customer_id = principal.get("customer_id")
    authtype = APP_USER if isinstance(customer_id, str) and customer_id else SERVICE_ACCOUNT
    return [(AUTHTYPE_HEADER, authtype.encode()), (AUTHID_HEADER, sub.encode())]


def send_event(
    producer: Any, topic: str, envelope: EventEnvelope, source: str, traceparent: str | None = None
) -> Any:
    """Hand one event's message to a KafkaProducer; the future of its acknowledgement."""
    return producer.send(
        topic,
        key=envelope.stream_id.encode(),
        value=envelope.to_json(),
        headers=message_headers(envelope, source, traceparent),
    )
