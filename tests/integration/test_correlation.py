"""A command's correlation id, followed through the real system: the HTTP response, the event's
metadata in the log, the Kafka message header, and the projector's log line for the event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kafka import TopicPartition

from shared.infra.config import Settings
from shared.infra.kafka import create_consumer
from tests.support.auth import api_session
from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceRunner, wait_until

pytestmark = pytest.mark.kafka

LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "4.00"}]
UUID_LENGTH = len(str(uuid.uuid4()))


@pytest.fixture
def system(tmp_path: Path, kafka_bootstrap: str, kafka_topic: str) -> Iterator[OrderSystem]:
    runner = ServiceRunner(tmp_path)
    try:
        # The projector's per-event lines are DEBUG.
        projector_env = {"LOG_LEVEL": "DEBUG"}
        yield OrderSystem(runner, kafka_bootstrap, kafka_topic, projector_env=projector_env).start()
    finally:
        runner.stop_all()
        runner.print_tails()


def message_headers(bootstrap: str, topic: str, count: int) -> dict[str, dict[str, bytes]]:
    """event_id (ce_id header) -> headers, for the first `count` messages of the topic."""
    consumer = create_consumer(
        Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap}), group_id=None
    )
    try:
        partitions = wait_until(lambda: consumer.partitions_for_topic(topic), 30, topic)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        found: dict[str, dict[str, bytes]] = {}

        def read_all() -> bool:
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    headers = dict(record.headers)
                    found[headers["ce_id"].decode()] = headers
            return len(found) >= count

        wait_until(read_all, 60, lambda: f"{len(found)} of {count} messages read")
        return found
    finally:
        consumer.close()


def applied_lines(projector_output: str) -> dict[str, dict[str, Any]]:
    """event_id -> the projector's JSON log line saying it applied that event."""
    lines = {}
    for line in projector_output.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("msg") == "applied event":
                lines[entry["event_id"]] = entry
    return lines


def test_the_correlation_id_of_each_command_reaches_its_events_messages_and_log_lines(
    system: OrderSystem,
) -> None:
    api = system.command_api.base_url
    http = api_session(system.admin_headers)
    given, requested = f"corr-{uuid.uuid4().hex}", f"req-{uuid.uuid4().hex}"
    account = {"customer_id": "c-corr", "initial_deposit": "100.00"}
    opened = http.post(
        f"{api}/accounts", json=account, headers={"X-Correlation-ID": given}, timeout=10
    )
    placed = http.post(
        f"{api}/orders",
        json={"customer_id": "c-corr", "lines": LINES},
        headers={"X-Correlation-ID": given},
        timeout=10,
    )
    order_id = placed.json()["order_id"]
    # X-Request-ID is taken when X-Correlation-ID is absent; paying writes two events.
    paid = http.post(
        f"{api}/orders/{order_id}/status",
        json={"status": "PAID"},
        headers={"X-Request-ID": requested},
        timeout=10,
    )
    # No id at all, and an id we could not log safely: both get a generated one.
    unnamed = http.post(f"{api}/orders", json={"customer_id": "c-corr", "lines": LINES}, timeout=10)
    unsafe = http.post(
        f"{api}/orders",
        json={"customer_id": "c-corr", "lines": LINES},
        headers={"X-Correlation-ID": 'x"\\ {}'},
        timeout=10,
    )
    statuses = [r.status_code for r in (opened, placed, paid, unnamed, unsafe)]
    assert statuses == [201, 201, 200, 201, 201]

    # 1. The response says which id the command got.
    assert opened.headers["X-Correlation-ID"] == placed.headers["X-Correlation-ID"] == given
    assert paid.headers["X-Correlation-ID"] == requested
    generated = [r.headers["X-Correlation-ID"] for r in (unnamed, unsafe)]
    assert all(len(g) == UUID_LENGTH for g in generated) and generated[0] != generated[1]

    # 2. Each event in the log carries its command's id.
    log = system.event_log()
    by_id = {e.event_id: e for e in log}
    expected: dict[str, str] = {}
    for response in (placed, paid, unnamed, unsafe):
        body = response.json()
        events = [e for e in log if e.stream_id == body["order_id"]]
        event = next(e for e in events if e.version == body["version"])
        expected[event.event_id] = response.headers["X-Correlation-ID"]
    account_events = [e for e in log if e.stream_id == "account:c-corr"]
    for event in account_events:
        # Opened and its deposit come from one command; the debit from the payment.
        expected[event.event_id] = requested if event.type == "AccountDebited" else given
    assert len(expected) == len(log) == 7
    for event_id, correlation_id in expected.items():
        assert by_id[event_id].metadata["correlation_id"] == correlation_id, by_id[event_id]

    # 3. The relay sends it as a Kafka header of each message.
    headers = message_headers(system.bootstrap, system.topic, len(log))
    for event_id, correlation_id in expected.items():
        assert headers[event_id]["correlation_id"] == correlation_id.encode()

    # 4. The projector's log line for each event names it.
    system.wait_converged()

    def logged_all() -> dict[str, dict[str, Any]] | None:
        found = applied_lines(system.projector.output())
        return found if set(expected) <= set(found) else None

    lines = wait_until(logged_all, 30, lambda: f"lines missing:\n{system.projector.tail()}")
    for event_id, correlation_id in expected.items():
        line = lines[event_id]
        event = by_id[event_id]
        assert line["correlation_id"] == correlation_id
        assert line["level"] == "DEBUG"
        assert (line["type"], line["stream_id"], line["version"], line["position"]) == (
            event.type,
            event.stream_id,
            event.version,
            event.position,
        )

    # The query API answers with the id it was given, or one it made, too.
    query = system.query_api.base_url
    answered = http.get(f"{query}/orders/nope", headers={"X-Request-ID": given}, timeout=10)
    assert (answered.status_code, answered.headers["X-Correlation-ID"]) == (404, given)
    made = requests.get(f"{query}/healthz", timeout=10).headers["X-Correlation-ID"]
    assert len(made) == UUID_LENGTH
