"""Another service consuming the orders.events topic with its AsyncAPI document (docs/consuming.md).

Plain kafka-python, jsonschema and sqlite3, nothing of this repository: copy it and put your
own effect in `apply`. It validates each record (value, headers, key) against the message of
its event type and schema version, upcasts old versions, and applies each event once per
stream version, in the same transaction as its own bookkeeping, so redeliveries are harmless.
tests/integration/test_asyncapi.py runs it on what a real relay published.

    python consume_order_events.py http://127.0.0.1:8001/asyncapi.json billing.db
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import requests
from jsonschema import Draft7Validator
from kafka import KafkaConsumer
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

# Any URI: it only names the document so the messages' "#/components/..." refs resolve in it.
DOCUMENT_URI = "https://orders.invalid/asyncapi.json"
# One step per old schema version, as each old message's description says.
UPCASTS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    ("OrderPlaced", 1): lambda data: {**data, "currency": "EUR"},
}


class NewerThanThisConsumer(Exception):
    """An event type or schema version the document this consumer loaded does not have."""


class Gap(Exception):
    """A stream version past the next one: earlier events were missed (e.g. trimmed)."""


class OrderEvents:
    """The topic's messages, from its AsyncAPI document, as record validators."""

    def __init__(self, document: dict[str, Any]) -> None:
        resource = Resource.from_contents(document, default_specification=DRAFT7)
        registry: Registry[Any] = Registry().with_resource(DOCUMENT_URI, resource)
        self.topic: str = document["channels"]["orderEvents"]["address"]
        self.validators: dict[tuple[str, int], dict[str, Draft7Validator]] = {}
        for name, message in document["components"]["messages"].items():
            payload = message["payload"]["properties"]
            shape = (payload["type"]["const"], payload["schema_version"]["const"])
            self.validators[shape] = {
                part: Draft7Validator(
                    {"$ref": f"{DOCUMENT_URI}#/components/messages/{name}/{pointer}"},
                    registry=registry,
                )
                for part, pointer in [
                    ("value", "payload"),
                    ("headers", "headers"),
                    ("key", "bindings/kafka/key"),
                ]
            }

    def read(self, key: bytes, headers: list[tuple[str, bytes]], value: bytes) -> dict[str, Any]:
        """The record's event, validated and upcast to the newest shape this consumer knows."""
        event: dict[str, Any] = json.loads(value)
        shape = (event["type"], event["schema_version"])
        if shape not in self.validators:
            raise NewerThanThisConsumer(f"{shape}: fetch the document again, or upgrade")
        checks = self.validators[shape]
        checks["value"].validate(event)
        checks["headers"].validate({name: raw.decode() for name, raw in headers})
        checks["key"].validate(key.decode())
        while (step := UPCASTS.get((event["type"], event["schema_version"]))) is not None:
            event = {
                **event,
                "data": step(event["data"]),
                "schema_version": event["schema_version"] + 1,
            }
        return event


def create_tracking(db: sqlite3.Connection) -> None:
    """The last applied version of each stream: what makes a redelivered event a no-op."""
    db.execute("CREATE TABLE IF NOT EXISTS applied (stream_id TEXT PRIMARY KEY, version INT)")


def apply_once(db: sqlite3.Connection, event: dict[str, Any]) -> bool:
    """Apply the event unless it was applied before; True if it was applied now."""
    with db:  # one transaction: the effect and the stream's version, or neither
        row = db.execute(
            "SELECT version FROM applied WHERE stream_id = ?", (event["stream_id"],)
        ).fetchone()
        last = row[0] if row else 0
        if event["version"] <= last:
            return False  # a duplicate: the relay publishes at least once
        if event["version"] > last + 1:
            # Read the missing versions from the command API (GET /orders/{id}/events or
            # /accounts/{customer_id}/events, scope events:read), or stop and alert.
            raise Gap(f"{event['stream_id']}: have v{last}, got v{event['version']}")
        apply(db, event)
        db.execute(
            "INSERT INTO applied VALUES (?, ?) "
            "ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version",
            (event["stream_id"], event["version"]),
        )
        return True


def apply(db: sqlite3.Connection, event: dict[str, Any]) -> None:
    """Your effect, on the same connection (here: nothing but the tracking row)."""


def main() -> None:
    """Consume the topic from the beginning in its own consumer group until interrupted."""
    document_url, db_path = sys.argv[1], sys.argv[2]
    document = requests.get(document_url, timeout=10).json()
    events = OrderEvents(document)
    db = sqlite3.connect(db_path)
    create_tracking(db)
    consumer = KafkaConsumer(
        events.topic,
        bootstrap_servers=[server["host"] for server in document["servers"].values()],
        group_id="billing-service",  # your service's own group
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # With docs/security.md's secure broker (the document's servers say which):
        # security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
        # sasl_plain_username="billing", sasl_plain_password=open("billing.password").read(),
        # ssl_cafile="ca.pem",
    )
    for record in consumer:
        apply_once(db, events.read(record.key, record.headers, record.value))
        consumer.commit()  # after the transaction: a crash in between only redelivers


if __name__ == "__main__":
    main()
