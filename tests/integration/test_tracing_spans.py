"""OpenTelemetry spans of one command, request -> append -> relay publish -> projector apply,
recorded by the real SDK's in-memory exporter: the real Flask app on a real SQLite log, the
real relay publishing to the real broker, the real projector applying to a real read model.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from kafka import KafkaProducer
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from command_service.adapters.event_store import EventStore
from command_service.http.app import create_app
from command_service.outbox.lease import RelayLease
from command_service.outbox.relay import Relay
from shared.contract.traceparent import parse_traceparent
from shared.http.auth import public
from shared.infra.config import Settings
from shared.infra.otel_tracing import OtelTracing
from shared.infra.structured_logging import JsonFormatter
from shared.infra.tracing import install_tracing
from tests.integration.query_support import (
    OrderEventLog,
    ProjectorThread,
    command_api_stand_in,
    new_read_model,
    produce_raw,
    query_settings,
    wait_consumed,
)
from tests.support.auth import bearer
from tests.support.processes import free_port, wait_until

pytestmark = pytest.mark.kafka

CLIENT_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN_ID = "00f067aa0ba902b7"
CLIENT_TRACEPARENT = f"00-{CLIENT_TRACE_ID}-{CLIENT_SPAN_ID}-01"
LINES = [{"product_id": "p-1", "quantity": 2, "unit_price": "3.00"}]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The process records spans into memory for the test (plain tracing again afterwards)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = install_tracing(OtelTracing(provider))
    try:
        yield exporter
    finally:
        install_tracing(previous)
        provider.shutdown()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log line of the test's process, formatted as the services format them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root, kafka = logging.getLogger(), logging.getLogger("kafka")
    levels = root.level, kafka.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    kafka.setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        kafka.setLevel(levels[1])


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def command_client(tmp_path: Path, bootstrap: str, topic: str) -> tuple[Flask, FlaskClient]:
    settings = Settings.from_env(
        {
            "DATA_DIR": str(tmp_path),
            "AUTH_MODE": "dev",
            "LOG_LEVEL": "DEBUG",  # the projector's per-event lines are DEBUG
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC": topic,
        }
    )
    app = create_app(settings)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(tmp_path)["Authorization"]
    return app, client


def publish_log(app: Flask, count: int) -> None:
    """Run the real relay in a thread until `count` events are published."""
    settings: Settings = app.config["SETTINGS"]
    store: EventStore = app.extensions["event_store"]
    lease = RelayLease(store.engine, settings.kafka_topic, "relay-test", 5)
    lease.create_schema()
    relay = Relay(settings, store, lease)
    thread = threading.Thread(target=relay.run, name="relay", daemon=True)
    thread.start()
    try:
        wait_until(lambda: lease.published_position() >= count, 30, "events not published")
    finally:
        relay.stop()
        thread.join(15)


def one(spans: list[ReadableSpan], kind: SpanKind, name: str) -> ReadableSpan:
    matching = [s for s in spans if s.kind is kind and s.name == name]
    assert len(matching) == 1, [(s.kind, s.name) for s in spans]
    return matching[0]


def test_the_four_spans_of_a_command_share_its_trace_and_link_up(
    spans: InMemorySpanExporter,
    json_log: io.StringIO,
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic: str,
) -> None:
    app, client = command_client(tmp_path, kafka_bootstrap, kafka_topic)
    placed = client.post(
        "/orders",
        json={"customer_id": "c-1", "lines": LINES},
        headers={"traceparent": CLIENT_TRACEPARENT},
    )
    assert placed.status_code == 201
    publish_log(app, 1)
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    with ProjectorThread(query_settings(str(engine.url), kafka_bootstrap, kafka_topic), engine):
        wait_consumed(engine, kafka_topic, 1)

    finished = list(spans.get_finished_spans())
    request = one(finished, SpanKind.SERVER, "POST /orders")
    append = one(finished, SpanKind.INTERNAL, "event_store.append")
    publish = one(finished, SpanKind.PRODUCER, f"send {kafka_topic}")
    apply = one(finished, SpanKind.CONSUMER, f"process {kafka_topic}")
    for span in (request, append, publish, apply):
        assert span.context is not None
        assert f"{span.context.trace_id:032x}" == CLIENT_TRACE_ID, span.name

    def parent_of(span: ReadableSpan) -> int | None:
        return span.parent.span_id if span.parent is not None else None

    assert request.context is not None and append.context is not None
    assert publish.context is not None
    assert parent_of(request) == int(CLIENT_SPAN_ID, 16)  # the caller's span
    assert parent_of(append) == request.context.span_id
    assert parent_of(publish) == request.context.span_id  # the context stored with the event
    assert parent_of(apply) == publish.context.span_id  # ce_traceparent
    assert request.parent is not None and request.parent.is_remote
    assert publish.parent is not None and publish.parent.is_remote
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 201
    assert publish.attributes is not None
    assert publish.attributes["messaging.message.id"] == apply.attributes["messaging.message.id"]  # type: ignore[index]

    # The response echoes the server span; the event stores exactly that traceparent.
    echoed = parse_traceparent(placed.headers["traceparent"])
    assert echoed is not None
    assert (echoed.trace_id, echoed.span_id) == (CLIENT_TRACE_ID, f"{request.context.span_id:016x}")
    [event] = app.extensions["event_store"].read_all(0, 10)
    assert event.metadata["traceparent"] == placed.headers["traceparent"]
    assert list(event.metadata)[:2] == ["correlation_id", "traceparent"]

    # The projector's line for the event names the trace and the correlation id.
    applied = [line for line in lines_of(json_log) if line["msg"] == "applied event"]
    assert [(line["level"], line["trace_id"]) for line in applied] == [("DEBUG", CLIENT_TRACE_ID)]
    assert applied[0]["correlation_id"] == placed.headers["X-Correlation-ID"]


def test_without_a_valid_traceparent_a_request_starts_a_new_trace(
    spans: InMemorySpanExporter, tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    _app, client = command_client(tmp_path, kafka_bootstrap, kafka_topic)
    given = {"traceparent": f"00-{'0' * 32}-{CLIENT_SPAN_ID}-01"}  # all-zero trace id: invalid
    invalid = client.post("/orders", json={"customer_id": "c-1", "lines": LINES}, headers=given)
    absent = client.post("/orders", json={"customer_id": "c-1", "lines": LINES})
    assert (invalid.status_code, absent.status_code) == (201, 201)
    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == 2 and all(s.parent is None for s in servers)
    traces = {parse_traceparent(r.headers["traceparent"]) for r in (invalid, absent)}
    assert None not in traces
    ids = {t.trace_id for t in traces if t is not None}
    assert len(ids) == 2 and CLIENT_TRACE_ID not in ids
    assert {f"{s.context.trace_id:032x}" for s in servers if s.context is not None} == ids


def test_a_command_api_log_line_carries_the_requests_correlation_and_trace_ids(
    json_log: io.StringIO, tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    # Plain tracing (no SDK): the ids still reach the log.
    app, client = command_client(tmp_path, kafka_bootstrap, kafka_topic)

    @app.get("/boom")
    @public
    def boom() -> str:
        raise RuntimeError("a bug")  # the app logs "unhandled error" and answers 500

    answered = client.get(
        "/boom", headers={"traceparent": CLIENT_TRACEPARENT, "X-Correlation-ID": "corr-boom"}
    )
    assert answered.status_code == 500
    [line] = [line for line in lines_of(json_log) if line["msg"] == "unhandled error"]
    assert (line["correlation_id"], line["trace_id"]) == ("corr-boom", CLIENT_TRACE_ID)
    echoed = parse_traceparent(answered.headers["traceparent"])
    assert echoed is not None and echoed.trace_id == CLIENT_TRACE_ID
    assert echoed.span_id != CLIENT_SPAN_ID  # the server's own span, not the caller's
    # Once the request is over, its ids are out of scope.
    logging.getLogger("test").warning("after the request")
    [after] = [line for line in lines_of(json_log) if line["msg"] == "after the request"]
    assert "trace_id" not in after and "correlation_id" not in after


def test_a_parked_messages_log_line_carries_its_trace_id(
    json_log: io.StringIO, tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    headers = [("ce_traceparent", CLIENT_TRACEPARENT.encode()), ("correlation_id", b"corr-bad")]
    sent = produce_raw(kafka_bootstrap, kafka_topic, [(b"o-bad", b"not json", headers)])
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    with ProjectorThread(query_settings(str(engine.url), kafka_bootstrap, kafka_topic), engine):
        wait_consumed(engine, kafka_topic, sent)
    parked = [line for line in lines_of(json_log) if line["msg"].startswith("parked a message")]
    assert [(p["trace_id"], p["correlation_id"]) for p in parked] == [(CLIENT_TRACE_ID, "corr-bad")]


@pytest.mark.parametrize(
    ("level", "log_events"),
    [(logging.INFO, True), (logging.DEBUG, False)],
    ids=["info-level", "projector-log-events-false"],
)
def test_the_per_event_line_needs_debug_and_projector_log_events(
    json_log: io.StringIO,
    tmp_path: Path,
    kafka_bootstrap: str,
    kafka_topic: str,
    level: int,
    log_events: bool,
) -> None:
    headers = [("ce_traceparent", CLIENT_TRACEPARENT.encode())]
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 1, 250)])
    messages = [(e.stream_id.encode(), e.to_json(), headers) for e in log.envelopes]
    sent = produce_raw(kafka_bootstrap, kafka_topic, messages)
    logging.getLogger().setLevel(level)
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic)
    with ProjectorThread(settings, engine, log_applied_events=log_events) as running:
        wait_consumed(engine, kafka_topic, sent)
    assert running.projector.stats.applied == 1
    lines = lines_of(json_log)
    assert [line for line in lines if line["msg"] == "applied event"] == []
    assert any(line["msg"] == "projector started" for line in lines)  # INFO lines still come


def test_the_relays_line_about_an_unacknowledged_event_names_its_ids(
    json_log: io.StringIO, tmp_path: Path
) -> None:
    dead = f"127.0.0.1:{free_port()}"  # nothing listens: the broker never acknowledges
    app, client = command_client(tmp_path, dead, "orders.events")
    placed = client.post(
        "/orders",
        json={"customer_id": "c-1", "lines": LINES},
        headers={"traceparent": CLIENT_TRACEPARENT, "X-Correlation-ID": "corr-relay"},
    )
    assert placed.status_code == 201
    settings: Settings = app.config["SETTINGS"]
    store: EventStore = app.extensions["event_store"]
    lease = RelayLease(store.engine, settings.kafka_topic, "relay-test", 5)
    lease.create_schema()

    def unreachable_producer(_settings: Settings) -> KafkaProducer:
        return KafkaProducer(bootstrap_servers=dead, api_version=(3, 0), max_block_ms=300)

    relay = Relay(settings, store, lease, producer_factory=unreachable_producer)
    thread = threading.Thread(target=relay.run, name="relay", daemon=True)
    thread.start()

    def warned() -> dict[str, Any] | None:
        lines = [
            line for line in lines_of(json_log) if line["msg"] == "Kafka unavailable; retrying"
        ]
        return lines[0] if lines else None

    try:
        line = wait_until(warned, 30, "the relay never failed to publish")
    finally:
        relay.stop()
        thread.join(15)
    assert (line["correlation_id"], line["trace_id"]) == ("corr-relay", CLIENT_TRACE_ID)
    assert lease.published_position() == 0


def test_a_gap_repair_continues_the_trace_of_the_event_that_needed_it(
    spans: InMemorySpanExporter, tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 1, 250)])
    paid = log.change("o-1", "PAID")
    headers = [("ce_traceparent", CLIENT_TRACEPARENT.encode()), ("correlation_id", b"corr-gap")]
    # Only version 2 is on the topic: the projector reads version 1 from the command API.
    sent = produce_raw(kafka_bootstrap, kafka_topic, [(b"o-1", paid.to_json(), headers)])
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    with command_api_stand_in(log) as api:
        settings = query_settings(
            str(engine.url), kafka_bootstrap, kafka_topic, command_api_url=api.url
        )
        with ProjectorThread(settings, engine) as running:
            wait_consumed(engine, kafka_topic, sent)
    assert running.projector.applier.repairs.repaired_events == 1
    [asked] = api.stream_request_headers
    apply = one(list(spans.get_finished_spans()), SpanKind.CONSUMER, f"process {kafka_topic}")
    assert apply.context is not None
    assert asked["X-Correlation-Id"] == "corr-gap"
    assert asked["Traceparent"] == f"00-{CLIENT_TRACE_ID}-{apply.context.span_id:016x}-01"
