"""The topic's AsyncAPI 3.0 document: valid against the specification schema, committed as
docs/asyncapi.json, served by the command API without a token, a message for every event type
and schema version the code can write, and every message a real relay publishes to the real
broker valid against it (key and headers included)."""

from __future__ import annotations

import copy
import importlib.util
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
import requests

from command_service.adapters.event_store import EventStore, NewEvent
from command_service.domain.account import AccountEvent
from command_service.domain.order import Event, OrderStatus
from command_service.http.app import create_app
from command_service.outbox.asyncapi import asyncapi_document
from shared.contract.envelope import EventEnvelope
from shared.contract.event_schemas import DATA_SCHEMAS, ORDER_STATUSES
from shared.contract.principal import ACCOUNTS_DEPOSIT
from shared.contract.upcasting import EVENT_SCHEMAS
from shared.infra.config import Settings
from shared.infra.kafka import ensure_topic
from tests.integration.test_relay import Orders, Received, TopicReader, whole_log
from tests.support.asyncapi import TopicContract, spec_errors, unresolved_refs
from tests.support.auth import bearer
from tests.support.processes import HttpService, ServiceRunner

DOCS = Path(__file__).parents[2] / "docs"
COMMITTED = DOCS / "asyncapi.json"
DOMAIN_EVENT_TYPES = {cls.__name__ for cls in (*get_args(Event), *get_args(AccountEvent))}
SECURE_KAFKA = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9093, kafka-2:9093",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SSL_CERTFILE": "/etc/kafka/client.pem",
}
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def default_document() -> dict[str, Any]:
    return asyncapi_document(Settings.from_env({}))


def example_records(document: dict[str, Any]) -> Iterator[tuple[bytes, dict[str, bytes], bytes]]:
    """Each message's example as the Kafka record it stands for: key, headers, value."""
    for message in document["components"]["messages"].values():
        [example] = message["examples"]
        headers = {name: value.encode() for name, value in example["headers"].items()}
        payload = example["payload"]
        yield payload["stream_id"].encode(), headers, json.dumps(payload).encode()


# --- the document ------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, SECURE_KAFKA], ids=["defaults", "sasl-ssl"])
def test_the_document_is_valid_asyncapi_3(env: dict[str, str]) -> None:
    document = asyncapi_document(Settings.from_env(env))
    assert document["asyncapi"] == "3.0.0"
    assert spec_errors(document) == []
    assert unresolved_refs(document) == []


def test_a_secured_broker_is_described_with_its_security_schemes() -> None:
    document = asyncapi_document(Settings.from_env(SECURE_KAFKA))
    servers = document["servers"]
    assert [s["host"] for s in servers.values()] == ["kafka-1:9093", "kafka-2:9093"]
    assert {s["protocol"] for s in servers.values()} == {"kafka-secure"}
    schemes = document["components"]["securitySchemes"]
    assert {name: s["type"] for name, s in schemes.items()} == {
        "sasl": "scramSha512",
        "clientCertificate": "X509",
    }


def test_the_specification_schema_catches_a_broken_document() -> None:
    document = default_document()
    broken = copy.deepcopy(document)
    broken["operations"]["publishEvents"]["action"] = "publish"  # AsyncAPI 2's word
    assert spec_errors(broken)
    broken = copy.deepcopy(document)
    del broken["channels"]["orderEvents"]["messages"]["OrderPlaced.v2"]
    assert spec_errors(broken) == []  # a dangling $ref is not the schema's business ...
    assert unresolved_refs(broken) == ["#/channels/orderEvents/messages/OrderPlaced.v2"]


def test_docs_asyncapi_json_is_what_the_code_generates() -> None:
    committed = json.loads(COMMITTED.read_text())
    assert committed == default_document(), "docs/asyncapi.json is stale: run `make asyncapi`"


def test_the_command_api_serves_it_to_anyone_for_its_own_topic(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path), "AUTH_MODE": "dev", "KAFKA_TOPIC": "shop.events"}
    settings = Settings.from_env(env)
    response = create_app(settings).test_client().get("/asyncapi.json")
    assert response.status_code == 200, response.text
    assert response.get_json() == asyncapi_document(settings)
    assert response.get_json()["channels"]["orderEvents"]["address"] == "shop.events"


# --- event types and schema versions -------------------------------------------------------


def test_every_event_type_the_code_can_write_has_a_message_per_schema_version() -> None:
    # The codec's versions are the upcaster chain's: it must know every type of the domain.
    assert set(EVENT_SCHEMAS.current) == DOMAIN_EVENT_TYPES
    every_version = {
        (event_type, version)
        for event_type, current in EVENT_SCHEMAS.current.items()
        for version in range(1, current + 1)
    }
    assert set(EVENT_SCHEMAS.steps) <= every_version
    assert set(TopicContract(default_document()).messages) == every_version


def test_the_status_enum_is_the_domains() -> None:
    assert [status.value for status in OrderStatus] == ORDER_STATUSES


def test_every_example_is_a_valid_record_of_its_message() -> None:
    document = default_document()
    contract = TopicContract(document)
    records = list(example_records(document))
    assert len(records) == len(DATA_SCHEMAS)
    for key, headers, value in records:
        assert contract.record_errors(key, headers, value) == []


def test_an_old_version_upcasts_to_the_current_shape_and_only_validates_as_itself() -> None:
    contract = TopicContract(default_document())
    old = [data for data in DATA_SCHEMAS if data.upcast is not None]
    assert [data.name for data in old] == ["OrderPlaced.v1"]
    for data in old:
        envelope = EventEnvelope.from_dict(_example_payload(data.name))
        current = EVENT_SCHEMAS.upcast(envelope)
        current_name = contract.messages[(data.event_type, current.schema_version)]
        upcast = contract.validator(f"/components/schemas/{current_name}")
        assert list(upcast.iter_errors(current.data)) == []
        assert list(upcast.iter_errors(data.example)), "v1 data must not pass as the current"


def test_the_schemas_refuse_what_the_relay_never_sends() -> None:
    document = default_document()
    contract = TopicContract(document)
    key, headers, value = next(
        record
        for record in example_records(document)
        if json.loads(record[2])["type"] == "OrderPlaced"
    )
    payload = json.loads(value)
    extra_field = {**payload, "data": {**payload["data"], "note": "x"}}
    assert contract.record_errors(key, headers, json.dumps(extra_field).encode())
    assert contract.record_errors(b"account:c-1", headers, value)  # an order under an account key
    without_type = {k: v for k, v in headers.items() if k != "ce_type"}
    assert contract.record_errors(key, without_type, value)
    assert contract.record_errors(key, {**headers, "ce_type": b"orders.OrderCancelled"}, value)
    unknown = {**payload, "schema_version": 9}
    assert contract.record_errors(key, headers, json.dumps(unknown).encode()) == [
        "no message for OrderPlaced v9"
    ]


def test_a_traceparent_is_optional_and_must_be_a_w3c_one() -> None:
    document = default_document()
    contract = TopicContract(document)
    key, headers, value = next(example_records(document))
    payload = json.loads(value)
    traced = {**payload, "metadata": {**payload["metadata"], "traceparent": TRACEPARENT}}
    traced_value = json.dumps(traced).encode()
    assert contract.record_errors(key, headers, traced_value) == []
    with_header = {**headers, "ce_traceparent": TRACEPARENT.encode()}
    assert contract.record_errors(key, with_header, traced_value) == []
    assert contract.record_errors(key, {**headers, "ce_traceparent": b"not-a-trace"}, value)
    bad = {**payload, "metadata": {**payload["metadata"], "traceparent": "00-xyz"}}
    assert contract.record_errors(key, headers, json.dumps(bad).encode())


def _example_payload(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = default_document()["components"]["messages"][name]["examples"][0][
        "payload"
    ]
    return payload


# --- what a real relay publishes ----------------------------------------------------------


@pytest.fixture
def topic_reader(kafka_bootstrap: str, kafka_topic: str) -> Iterator[TopicReader]:
    ensure_topic(kafka_bootstrap, kafka_topic, 3, 1)
    reader = TopicReader(kafka_bootstrap, kafka_topic)
    yield reader
    reader.close()


def write_v1_order_placed(event_log: EventStore, order_id: str) -> None:
    """A row as the code before the currency field wrote it (schema_version 1)."""
    data = _example_payload("OrderPlaced.v1")["data"]
    metadata = {"correlation_id": "old", "causation_id": "old"}
    event_log.append(
        order_id, 0, [NewEvent("OrderPlaced", {**data, "order_id": order_id}, metadata, 1)]
    )


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_every_message_the_relay_publishes_is_a_message_of_the_document(
    services: ServiceRunner,
    command_api: HttpService,
    event_log: EventStore,
    kafka_bootstrap: str,
    kafka_topic: str,
    topic_reader: TopicReader,
) -> None:
    services.relay(kafka_bootstrap, kafka_topic)
    orders = Orders(command_api)  # opens c-1's account with a deposit
    orders.place("aa-delivered")
    for status in ("PAID", "SHIPPED", "DELIVERED"):
        orders.change_status("aa-delivered", status)
    body = {"order_id": "aa-refunded", "customer_id": "c-1", "lines": [_line()]}
    orders._call("post", "/orders", 201, {**orders.customer, "traceparent": TRACEPARENT}, json=body)
    orders.change_status("aa-refunded", "PAID")
    orders.cancel("aa-refunded")  # a refund: AccountCredited
    orders.place("aa-cancelled")
    orders.cancel("aa-cancelled")
    gateway = bearer(Path(command_api.env["DATA_DIR"]), "payment-gateway", [ACCOUNTS_DEPOSIT])
    orders._call("post", "/accounts/c-1/deposits", 200, gateway, json={"amount": "1.00"})
    write_v1_order_placed(event_log, "aa-old")

    # Served by the running command API, as another service would read it: no token.
    document = requests.get(f"{command_api.base_url}/asyncapi.json", timeout=10).json()
    assert spec_errors(document) == []
    contract = TopicContract(document)
    log = whole_log(event_log)
    records = topic_reader.wait_for(log)
    assert len(records) == len(log)
    for record in records:
        errors = contract.record_errors(record.key.encode(), record.headers, record.value)
        assert errors == [], (record.envelope.type, record.envelope.schema_version, errors)
    published = {(r.envelope.type, r.envelope.schema_version) for r in records}
    # Every type the domain can emit went through the relay, the old shape too.
    assert {event_type for event_type, _ in published} == DOMAIN_EVENT_TYPES
    assert ("OrderPlaced", 1) in published
    # The optional fields' other side: a deposit without a deposit_id, a cancel without reason.
    data = [r.envelope.data for r in records]
    assert any("deposit_id" in d and d["deposit_id"] is None for d in data)
    assert any("reason" in d and d["reason"] is None for d in data)
    consume_like_another_service(document, records, services.workdir)


def consume_like_another_service(
    document: dict[str, Any], records: list[Received], data_dir: Path
) -> None:
    """docs/examples/consume_order_events.py on the records: each event applied once."""
    spec = importlib.util.spec_from_file_location(
        "consume_order_events", DOCS / "examples" / "consume_order_events.py"
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    events = example.OrderEvents(document)
    db = sqlite3.connect(data_dir / "billing.db")
    example.create_tracking(db)

    def consume() -> list[dict[str, Any]]:
        read = [events.read(r.key.encode(), list(r.headers.items()), r.value) for r in records]
        return [event for event in read if example.apply_once(db, event)]

    applied = consume()
    assert len(applied) == len(records)
    [old] = [event for event in applied if event["stream_id"] == "aa-old"]
    assert (old["schema_version"], old["data"]["currency"]) == (2, "EUR")
    assert consume() == [], "a redelivered event must change nothing"
    db.close()


def _line() -> dict[str, Any]:
    return {"product_id": "p-1", "quantity": 1, "unit_price": "3.00"}
