"""A trace id goes from an HTTP request to the projector's log line, through Kafka: the four
services as real processes, exporting their spans over OTLP/HTTP to a collector of the test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.contract.traceparent import parse_traceparent
from tests.support.auth import api_session
from tests.support.order_system import OrderSystem
from tests.support.otlp_collector import ExportedSpan, OtlpCollector
from tests.support.processes import ServiceRunner, wait_until

pytestmark = pytest.mark.kafka

LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "4.00"}]


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    with OtlpCollector() as running:
        yield running


@pytest.fixture
def traced_system(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str, collector: OtlpCollector
) -> Iterator[OrderSystem]:
    """The four processes exporting spans to `collector`; the projector logs at DEBUG."""
    # A short export delay, so spans arrive while the test waits rather than after 5 s.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    with ServiceRunner(tmp_path, env=env) as runner:
        system = OrderSystem(
            runner, kafka_bootstrap, kafka_topic, projector_env={"LOG_LEVEL": "DEBUG"}
        )
        yield system.start()


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_a_trace_id_goes_from_an_http_request_to_the_projectors_log_line_through_kafka(
    traced_system: OrderSystem, collector: OtlpCollector
) -> None:
    system = traced_system
    trace_id, caller_span = os.urandom(16).hex(), os.urandom(8).hex()
    http = api_session(system.admin_headers)
    placed = http.post(
        f"{system.command_api.base_url}/orders",
        json={"customer_id": "c-trace", "lines": LINES},
        headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        timeout=10,
    )
    assert placed.status_code == 201
    echoed = parse_traceparent(placed.headers["traceparent"])
    assert echoed is not None and echoed.trace_id == trace_id
    [event] = [e for e in system.event_log() if e.stream_id == placed.json()["order_id"]]
    assert event.metadata["traceparent"] == placed.headers["traceparent"]

    # The projector, another process reading the message from Kafka, logs the trace id.
    def applied_line() -> dict[str, Any] | None:
        for line in json_lines(system.projector.output()):
            if line.get("msg") == "applied event" and line.get("event_id") == event.event_id:
                return line
        return None

    line = wait_until(applied_line, 60, lambda: f"no line:\n{system.projector.tail()}")
    assert line["trace_id"] == trace_id
    assert line["correlation_id"] == placed.headers["X-Correlation-ID"]
    assert line["level"] == "DEBUG"

    # Each process exported its span of that trace, each the child of the one before.
    def all_spans() -> dict[tuple[str, str], ExportedSpan] | None:
        found = {(s.service, s.kind): s for s in collector.of_trace(trace_id)}
        wanted = {
            ("command-api", "SERVER"),
            ("command-api", "INTERNAL"),
            ("command-relay", "PRODUCER"),
            ("query-projector", "CONSUMER"),
        }
        return found if wanted <= set(found) else None

    spans = wait_until(all_spans, 30, lambda: f"spans so far: {collector.of_trace(trace_id)}")
    request = spans[("command-api", "SERVER")]
    append = spans[("command-api", "INTERNAL")]
    publish = spans[("command-relay", "PRODUCER")]
    apply = spans[("query-projector", "CONSUMER")]
    assert (request.name, append.name) == ("POST /orders", "event_store.append")
    assert request.parent_span_id == caller_span
    assert request.span_id == echoed.span_id
    assert append.parent_span_id == request.span_id
    assert publish.parent_span_id == request.span_id
    assert apply.parent_span_id == publish.span_id
