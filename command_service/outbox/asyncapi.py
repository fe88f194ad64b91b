"""The AsyncAPI 3.0 document of the topic the relay publishes: its key, its headers and one
message per event type and schema version, built from `shared/contract/event_schemas.py`.

The command API serves it at /asyncapi.json (with the deployment's topic and brokers);
docs/asyncapi.json is this module's output for the default settings, regenerated with
`make asyncapi` (a test fails when the two differ). docs/consuming.md explains how to use it.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, get_args

from command_service.domain.account import STREAM_PREFIX, AccountEvent
from command_service.outbox.message import (
    APP_USER,
    AUTHID_HEADER,
    AUTHTYPE_HEADER,
    SERVICE_ACCOUNT,
    UNKNOWN,
    message_headers,
)
from shared.contract.envelope import CLOUDEVENTS_SPEC_VERSION, CLOUDEVENTS_TYPE_PREFIX
from shared.contract.envelope import EventEnvelope as Envelope
from shared.contract.event_schemas import (
    DATA_SCHEMAS,
    IDENTIFIER,
    METADATA,
    TIMESTAMP_PATTERN,
    TRACEPARENT_PATTERN,
    DataSchema,
    Schema,
    envelope_schema,
)
from shared.contract.traceparent import KAFKA_TRACEPARENT_HEADER
from shared.http.correlation import KAFKA_CORRELATION_HEADER
from shared.infra.config import Settings

ASYNCAPI_VERSION = "3.0.0"
# The document's own version: bump it when the contract below changes.
DOCUMENT_VERSION = "1.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
CHANNEL = "orderEvents"
ACCOUNT_EVENT_TYPES = frozenset(cls.__name__ for cls in get_args(AccountEvent))
# kafka-python's SASL mechanisms -> AsyncAPI security scheme types.
SASL_SCHEMES = {
    "PLAIN": "plain",
    "SCRAM-SHA-256": "scramSha256",
    "SCRAM-SHA-512": "scramSha512",
    "GSSAPI": "gssapi",
}

DESCRIPTION = """\
Every event of the order platform's event log (orders and customer accounts), published by the
command service's relay in log order, at least once. The value is the JSON event envelope; the
headers are CloudEvents 1.0 in Kafka binary mode plus the auth context extension and the
command's correlation id. The key is the stream id, so one stream's events share a partition
and arrive in version order; drop duplicates by `event_id` or by (`stream_id`, `version`).
An event keeps the `schema_version` it was written with: read older versions through the
upcasting step each message describes. How to consume it: docs/consuming.md."""

HEADERS: Schema = {
    "type": "object",
    "description": "Kafka record headers, each value UTF-8 text.",
    "additionalProperties": False,
    "required": [
        "ce_specversion",
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_time",
        "ce_subject",
        "content-type",
        AUTHTYPE_HEADER,
    ],
    "properties": {
        "ce_specversion": {"type": "string", "const": CLOUDEVENTS_SPEC_VERSION},
        "ce_id": {**IDENTIFIER, "description": "= the envelope's event_id."},
        "ce_source": {**IDENTIFIER, "description": "The relay's CLOUDEVENTS_SOURCE (a URI)."},
        "ce_type": {"type": "string", "pattern": f"^{CLOUDEVENTS_TYPE_PREFIX}[A-Za-z]+$"},
        "ce_time": {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
        "ce_subject": {**IDENTIFIER, "description": "= the key and the envelope's stream_id."},
        "content-type": {"type": "string", "const": "application/json"},
        AUTHTYPE_HEADER: {
            "type": "string",
            "enum": [APP_USER, SERVICE_ACCOUNT, UNKNOWN],
            "description": "CloudEvents authcontext: a customer's token, a service or staff "
            "token, or an event written before authentication.",
        },
        AUTHID_HEADER: {
            **IDENTIFIER,
            "description": "The caller's token `sub`; absent when ce_authtype is unknown.",
        },
        KAFKA_CORRELATION_HEADER: {
            **IDENTIFIER,
            "description": "The command's correlation id (metadata.correlation_id), if any.",
        },
        KAFKA_TRACEPARENT_HEADER: {
            "type": "string",
            "pattern": TRACEPARENT_PATTERN,
            "description": "CloudEvents distributed-tracing extension: a W3C traceparent in "
            "the trace of the request that appended the event (metadata.traceparent), if any.",
        },
    },
}


def asyncapi_document(settings: Settings) -> dict[str, Any]:
    """The AsyncAPI 3.0 document for the topic and brokers `settings` name."""
    messages = {data.name: _message(data, n, settings) for n, data in enumerate(DATA_SCHEMAS)}
    schemas: dict[str, Schema] = {data.name: data.schema for data in DATA_SCHEMAS}
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Order events",
            "version": DOCUMENT_VERSION,
            "description": DESCRIPTION,
        },
        "defaultContentType": "application/json",
        "servers": _servers(settings),
        "channels": {
            CHANNEL: {
                "address": settings.kafka_topic,
                "title": "The event log, as a Kafka topic",
                "description": "Key: the stream id (an order id, or account:<customer_id>).",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
                "bindings": {
                    "kafka": {
                        "partitions": settings.kafka_topic_partitions,
                        "replicas": settings.kafka_replication_factor,
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
            }
        },
        "operations": {
            "publishEvents": {
                "action": "send",
                "channel": {"$ref": f"#/channels/{CHANNEL}"},
                "title": "The relay publishes the event log",
                "summary": "Every appended event, in log order, at least once.",
                "messages": [
                    {"$ref": f"#/channels/{CHANNEL}/messages/{name}"} for name in messages
                ],
            }
        },
        "components": {
            "schemas": {**schemas, "Metadata": METADATA, "Headers": HEADERS},
            "messages": messages,
            "securitySchemes": _security_schemes(settings),
        },
    }


def _message(data: DataSchema, index: int, settings: Settings) -> dict[str, Any]:
    ce_type = f"{CLOUDEVENTS_TYPE_PREFIX}{data.event_type}"
    description = f"`type` {data.event_type}, `schema_version` {data.schema_version}. "
    description += data.upcast or "The current shape: what the code writes today."
    example = _example(data, index)
    headers = dict(message_headers(example, settings.cloudevents_source))
    return {
        "name": data.event_type,
        "title": f"{data.event_type} v{data.schema_version}",
        "summary": data.summary,
        "description": description,
        "contentType": "application/json",
        "headers": {
            "allOf": [
                {"$ref": "#/components/schemas/Headers"},
                {"properties": {"ce_type": {"const": ce_type}}},
            ]
        },
        "payload": envelope_schema(
            data,
            {"$ref": f"#/components/schemas/{data.name}"},
            {"$ref": "#/components/schemas/Metadata"},
        ),
        "correlationId": {
            "description": "The command that caused it; shared by the events of one flow.",
            "location": f"$message.header#/{KAFKA_CORRELATION_HEADER}",
        },
        "bindings": {
            "kafka": {"key": _key_schema(data.event_type), "bindingVersion": KAFKA_BINDING_VERSION}
        },
        "examples": [
            {
                "name": data.name,
                "headers": {name: value.decode() for name, value in headers.items()},
                "payload": example.to_dict(),
            }
        ],
    }


def _key_schema(event_type: str) -> Schema:
    if event_type in ACCOUNT_EVENT_TYPES:
        pattern, what = f"^{STREAM_PREFIX}.+$", "the account's stream id, account:<customer_id>"
    else:
        pattern, what = "^[^:]+$", "the order id"
    return {"type": "string", "pattern": pattern, "description": f"UTF-8: {what}."}


def _example(data: DataSchema, index: int) -> Envelope:
    # No traceparent: the examples' headers come from message_headers, and they should not
    # change with whether it copies one into ce_traceparent.
    customer = data.example["customer_id"]
    account = data.event_type in ACCOUNT_EVENT_TYPES
    stream_id = f"{STREAM_PREFIX}{customer}" if account else data.example["order_id"]
    return Envelope(
        event_id=f"00000000-0000-4000-8000-{index + 1:012d}",
        type=data.event_type,
        stream_id=stream_id,
        version=1,
        position=index + 1,
        occurred_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        schema_version=data.schema_version,
        data=data.example,
        metadata={
            "correlation_id": "corr-1",
            "causation_id": "cmd-1",
            "principal": {"sub": f"user-{customer}", "iss": "urn:idp", "customer_id": customer},
        },
    )


def _servers(settings: Settings) -> dict[str, Any]:
    secure = settings.kafka_security_protocol in {"SSL", "SASL_SSL"}
    security = [
        {"$ref": f"#/components/securitySchemes/{name}"} for name in _security_schemes(settings)
    ]
    hosts = [host.strip() for host in settings.kafka_bootstrap_servers.split(",") if host.strip()]
    return {
        f"broker{n}": {
            "host": host,
            "protocol": "kafka-secure" if secure else "kafka",
            "description": f"A bootstrap server (KAFKA_SECURITY_PROTOCOL "
            f"{settings.kafka_security_protocol}; docs/security.md).",
            "security": security,
        }
        for n, host in enumerate(hosts, 1)
    }


def _security_schemes(settings: Settings) -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    mechanism = settings.kafka_sasl_mechanism
    if settings.kafka_security_protocol.startswith("SASL") and mechanism in SASL_SCHEMES:
        schemes["sasl"] = {
            "type": SASL_SCHEMES[mechanism],
            "description": f"SASL {mechanism}: a user the broker's ACLs let read the topic.",
        }
    if settings.kafka_security_protocol in {"SSL", "SASL_SSL"} and settings.kafka_ssl_certfile:
        schemes["clientCertificate"] = {"type": "X509", "description": "Mutual TLS."}
    return schemes


def main() -> None:
    """Print the document for the default settings: `make asyncapi` writes docs/asyncapi.json."""
    document = asyncapi_document(Settings.from_env({}))
    sys.stdout.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
