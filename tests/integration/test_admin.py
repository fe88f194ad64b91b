"""orders-admin run as its console script: real SQLite files, a real broker, a real command API."""

from __future__ import annotations

import getpass
import json
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from sqlalchemy import Engine, select

from command_service.adapters.event_store import EventStore, NewEvent, StreamAppend
from command_service.outbox.lease import RelayLease
from query_service.read_model.order_writer import ParkedEvent, load_positions, park, save_positions
from query_service.read_model.tables import (
    create_read_model_engine,
    create_read_model_schema,
    orders,
)
from shared.contract.envelope import EventEnvelope
from shared.infra.config import Settings
from shared.infra.db import write_transaction
from shared.infra.kafka import create_consumer
from tests.support.auth import api_session
from tests.support.processes import (
    REPO_ROOT,
    HttpService,
    ServiceProcess,
    ServiceRunner,
    console_script,
    free_port,
    wait_until,
)

ADMIN = console_script("orders-admin", "ops.admin")
ADMIN_TIMEOUT_S = 60
REASON = "test: a repair the suite asked for"
LINES = [{"product_id": "p-1", "quantity": 2, "unit_price": "12.50"}]


def run_admin(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run `orders-admin ARGS` to completion (a hang fails the test through the timeout)."""
    return subprocess.run(
        [*ADMIN, *args],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=ADMIN_TIMEOUT_S,
        check=False,
    )


def admin_env(runner: ServiceRunner, **overrides: str) -> dict[str, str]:
    """The run's environment, with every store the admin reads pinned to the run's work dir."""
    return runner.base_env(READ_MODEL_URL=read_model_url(runner), **overrides)


def read_model_url(runner: ServiceRunner) -> str:
    return f"sqlite:///{runner.workdir / 'read_model.db'}"


def audit_lines(stderr: str) -> list[dict[str, Any]]:
    """The audit log lines (JSON) a repair command wrote to stderr."""
    entries = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [entry for entry in entries if entry.get("audit") is True]


def status_json(env: dict[str, str]) -> dict[str, Any]:
    result = run_admin(env, "status", "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def append_events(store: EventStore, streams: int, events_per_stream: int) -> list[EventEnvelope]:
    """Write events straight to the log; the relay and republish never look inside them."""
    prefix = uuid.uuid4().hex[:8]
    appends = [
        StreamAppend(
            f"adm-{prefix}-{i}",
            0,
            [
                NewEvent("OrderNoted", {"n": v}, {"correlation_id": f"c-{i}-{v}"})
                for v in range(1, events_per_stream + 1)
            ],
        )
        for i in range(streams)
    ]
    return store.append_streams(appends)


def relay_checkpoint(store: EventStore, topic: str) -> RelayLease:
    """A view of the topic's relay_state row that never takes the lease itself."""
    view = RelayLease(store.engine, topic, owner="test-observer", ttl_seconds=1)
    view.create_schema()
    return view


def read_model_at(services: ServiceRunner) -> Engine:
    """The read model the admin reads (see admin_env), with its tables."""
    engine = create_read_model_engine(read_model_url(services))
    create_read_model_schema(engine)
    return engine


@dataclass(frozen=True)
class Record:
    """One consumed message."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    partition: int
    envelope: EventEnvelope


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 30) -> list[Record]:
    """Read the topic from its beginning until `count` messages arrived (fail if more do)."""
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
    consumer = create_consumer(settings, group_id=None, fetch_max_wait_ms=50)
    try:
        partitions = wait_until(lambda: consumer.partitions_for_topic(topic), 30, topic)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        # Past `count`, keep reading briefly: an extra copy would show up here.
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(
                    Record(
                        r.key,
                        r.value,
                        list(r.headers),
                        r.partition,
                        EventEnvelope.from_json(r.value),
                    )
                    for r in batch
                )
            if len(records) >= count:
                settle_until = settle_until or time.monotonic() + 1.0
                if time.monotonic() >= settle_until:
                    break
        assert len(records) == count, f"read {len(records)} messages, expected {count}"
        return records
    finally:
        consumer.close()


@dataclass(frozen=True)
class PublishedLog:
    """Events in the log that a running relay has published to the topic."""

    events: list[EventEnvelope]
    relay: ServiceProcess
    checkpoint: RelayLease
    env: dict[str, str]


@pytest.fixture
def published_log(
    services: ServiceRunner, event_log: EventStore, kafka_bootstrap: str, kafka_topic: str
) -> PublishedLog:
    events = append_events(event_log, streams=4, events_per_stream=3)
    relay = services.relay(kafka_bootstrap, kafka_topic)
    checkpoint = relay_checkpoint(event_log, kafka_topic)
    wait_until(
        lambda: checkpoint.published_position() == events[-1].position,
        30,
        lambda: f"the relay did not publish everything:\n{relay.tail()}",
    )
    env = admin_env(services, KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap, KAFKA_TOPIC=kafka_topic)
    return PublishedLog(events, relay, checkpoint, env)


# --- status --------------------------------------------------------------------------------


@pytest.mark.kafka
def test_status_of_a_new_data_dir_says_what_is_missing_and_creates_nothing(
    tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> None:
    data_dir = tmp_path / "data"
    env = admin_env(
        ServiceRunner(data_dir, prepare_event_store=False),
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        KAFKA_TOPIC=kafka_topic,
    )

    report = status_json(env)
    text = run_admin(env, "status")

    assert report["event_log"] == {
        "url": f"sqlite:///{data_dir / 'events.db'}",
        "state": "missing",
        "head_position": None,
        "error": None,
    }
    assert report["relay"]["published_position"] is None
    assert report["kafka"]["reachable"] is True
    assert report["kafka"]["topic_exists"] is True
    assert report["kafka"]["end_offsets"] == [{"partition": p, "end_offset": 0} for p in range(3)]
    assert report["projector"]["state"] == "missing"
    assert text.returncode == 0, text.stderr
    assert "event log   " in text.stdout and "does not exist yet" in text.stdout
    assert "the read model does not exist yet" in text.stdout
    assert not data_dir.exists(), "status must not create the data dir or its databases"


@pytest.mark.kafka
def test_status_shows_the_relay_caught_up_with_the_log(
    published_log: PublishedLog, kafka_bootstrap: str
) -> None:
    head = published_log.events[-1].position

    report = status_json(published_log.env)
    text = run_admin(published_log.env, "status")

    assert report["event_log"]["state"] == "ok"
    assert report["event_log"]["head_position"] == head == 12
    relay = report["relay"]
    assert (relay["published_position"], relay["lag"]) == (head, 0)
    assert relay["lease_owner"] is not None
    assert relay["lease_owner"] == published_log.checkpoint.holder().owner
    assert relay["lease_active"] is True
    assert relay["lease_expires_at"].endswith("Z")
    kafka = report["kafka"]
    assert kafka["bootstrap_servers"] == kafka_bootstrap
    assert sum(p["end_offset"] for p in kafka["end_offsets"]) == head
    assert report["projector"]["state"] == "missing"
    assert text.returncode == 0, text.stderr
    assert "  head position     12" in text.stdout
    assert "  relay published   12 (lag 0)" in text.stdout
    assert "(active)" in text.stdout
    assert "(total 12)" in text.stdout

    assert published_log.relay.stop() == 0
    stopped = status_json(published_log.env)["relay"]
    assert (stopped["lease_owner"], stopped["lease_active"]) == (None, False)
    assert stopped["published_position"] == head


@pytest.mark.kafka
def test_status_shows_the_projector_lag_per_partition_from_the_read_model(
    published_log: PublishedLog, services: ServiceRunner, kafka_topic: str
) -> None:
    ends = {
        p["partition"]: p["end_offset"]
        for p in status_json(published_log.env)["kafka"]["end_offsets"]
    }
    # Partition 0 caught up, partition 1 one behind, partition 2 never read by the projector.
    stored = {0: ends[0], 1: max(ends[1] - 1, 0)}
    engine = read_model_at(services)
    try:
        with write_transaction(engine) as conn:
            save_positions(conn, kafka_topic, stored)
            park(
                conn,
                ParkedEvent(origin="kafka", error="test", topic=kafka_topic, partition=2, offset=0),
            )
    finally:
        engine.dispose()

    report = status_json(published_log.env)
    text = run_admin(published_log.env, "status")

    projector = report["projector"]
    assert projector["state"] == "ok"
    rows = {row["partition"]: row for row in projector["partitions"]}
    assert [(rows[p]["next_offset"], rows[p]["end_offset"]) for p in range(3)] == [
        (stored[0], ends[0]),
        (stored[1], ends[1]),
        (None, ends[2]),
    ]
    expected_lags = [0, ends[1] - stored[1], ends[2]]
    assert [rows[p]["lag"] for p in range(3)] == expected_lags
    assert rows[0]["updated_at"].endswith("Z") and rows[2]["updated_at"] is None
    assert projector["total_lag"] == sum(expected_lags)
    assert projector["parked_events"] == 1
    assert "  partition  next offset  end offset      lag  updated at" in text.stdout
    assert f"  total lag         {sum(expected_lags)}" in text.stdout
    assert "  parked events     1" in text.stdout


def test_status_with_kafka_unreachable_returns_and_says_so(
    services: ServiceRunner, event_log: EventStore
) -> None:
    append_events(event_log, streams=2, events_per_stream=2)
    topic = "orders.events"
    engine = read_model_at(services)
    try:
        with write_transaction(engine) as conn:
            save_positions(conn, topic, {0: 3, 1: 1})
    finally:
        engine.dispose()
    env = admin_env(services, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", KAFKA_TOPIC=topic)

    text = run_admin(env, "status", "--kafka-timeout", "1")
    report = status_json(env)

    assert text.returncode == 0, text.stderr
    assert "  unreachable: KafkaTimeoutError" in text.stdout
    assert "  total lag         unknown (Kafka unreachable)" in text.stdout
    assert report["event_log"]["head_position"] == 4
    assert report["relay"] == {
        "topic": topic,
        "published_position": 0,
        "lag": 4,
        "lease_owner": None,
        "lease_expires_at": None,
        "lease_active": False,
    }
    assert report["kafka"]["reachable"] is False
    assert report["kafka"]["error"]
    rows = report["projector"]["partitions"]
    assert [(r["partition"], r["next_offset"], r["lag"]) for r in rows] == [
        (0, 3, None),
        (1, 1, None),
    ]
    assert report["projector"]["total_lag"] is None


# --- republish -----------------------------------------------------------------------------


@pytest.mark.kafka
def test_republish_sends_exactly_the_range_again_as_the_relay_sent_it(
    published_log: PublishedLog, kafka_bootstrap: str, kafka_topic: str
) -> None:
    assert published_log.relay.stop() == 0
    events = published_log.events
    first, last = 4, 9

    result = run_admin(
        published_log.env,
        "republish",
        "--from",
        str(first),
        "--to",
        str(last),
        "--yes",
        "--reason",
        REASON,
    )

    assert result.returncode == 0, result.stderr
    assert "re-published 6 events (positions 4..9)" in result.stdout
    [audit] = audit_lines(result.stderr)
    assert audit["msg"] == "orders-admin republish"
    assert (audit["os_user"], audit["reason"]) == (getpass.getuser(), REASON)
    assert (audit["first"], audit["last"], audit["topic"]) == (first, last, kafka_topic)
    assert "republish [" in result.stderr and "6/6 events" in result.stderr
    records = read_topic(kafka_bootstrap, kafka_topic, len(events) + 6)
    copies = Counter(r.envelope.position for r in records)
    assert copies == {e.position: 2 if first <= e.position <= last else 1 for e in events}
    by_position: dict[int, list[Record]] = {}
    for record in records:
        by_position.setdefault(record.envelope.position, []).append(record)
    for event in events:
        original, *again = by_position[event.position]
        assert original.key == event.stream_id.encode()
        assert dict(original.headers)["ce_id"] == event.event_id.encode()
        for copy in again:
            assert (copy.key, copy.value, copy.headers, copy.partition) == (
                original.key,
                original.value,
                original.headers,
                original.partition,
            )
    assert published_log.checkpoint.published_position() == events[-1].position
    assert published_log.checkpoint.holder().owner is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "3", "--to", "2"], "--from 3 is after --to 2"),
        (["--from", "0", "--to", "2"], "positions start at 1"),
        (["--from", "4", "--to", "6"], "--to 6 is beyond the head of the log (5)"),
        (["--from", "x", "--to", "2"], "not a log position: 'x'"),
        (["--from", "1"], "the following arguments are required: --to"),
        (["--from", "1", "--to", "2"], "pass --yes to confirm"),
        (["--from", "1", "--to", "2", "--reason", " "], "--reason: say why, in a few words"),
    ],
)
def test_republish_refuses_bad_usage_with_exit_2(
    services: ServiceRunner, event_log: EventStore, args: list[str], message: str
) -> None:
    append_events(event_log, streams=1, events_per_stream=5)
    env = admin_env(services, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")

    reason = [] if "--reason" in args else ["--reason", REASON]

    result = run_admin(env, "republish", *args, *reason)

    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert audit_lines(result.stderr) == []


@pytest.mark.parametrize(
    "command", [["republish", "--from", "1", "--to", "1", "--yes"], ["rebuild"]]
)
def test_repairs_refuse_to_run_without_a_reason(tmp_path: Path, command: list[str]) -> None:
    data_dir = tmp_path / "data"
    env = admin_env(ServiceRunner(data_dir, prepare_event_store=False))

    result = run_admin(env, *command)

    assert result.returncode == 2
    assert "the following arguments are required: --reason" in result.stderr
    assert result.stdout == ""
    assert not data_dir.exists()


def test_republish_without_kafka_fails_with_exit_1_and_sends_nothing(
    services: ServiceRunner, event_log: EventStore
) -> None:
    append_events(event_log, streams=1, events_per_stream=2)
    env = admin_env(services, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}")

    result = run_admin(env, "republish", "--from", "1", "--to", "2", "--yes", "--reason", REASON)

    assert result.returncode == 1
    assert "unreachable" in result.stderr and "nothing was sent" in result.stderr
    assert audit_lines(result.stderr) == []


def test_republish_on_an_empty_data_dir_is_beyond_the_head(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = admin_env(ServiceRunner(data_dir, prepare_event_store=False))

    result = run_admin(env, "republish", "--from", "1", "--to", "1", "--yes", "--reason", REASON)

    assert result.returncode == 2
    assert "beyond the head of the log (0)" in result.stderr
    assert not data_dir.exists()


def test_no_command_is_bad_usage(tmp_path: Path) -> None:
    result = run_admin(admin_env(ServiceRunner(tmp_path, prepare_event_store=False)))

    assert result.returncode == 2
    assert "status" in result.stderr and "republish" in result.stderr


# --- rebuild -------------------------------------------------------------------------------


@pytest.mark.kafka
def test_rebuild_builds_the_read_model_from_the_command_api(
    services: ServiceRunner, command_api: HttpService, kafka_bootstrap: str, kafka_topic: str
) -> None:
    with api_session(services.admin_headers) as http:
        for order_id in ("rb-1", "rb-2", "rb-3"):
            body = {"order_id": order_id, "customer_id": "c-1", "lines": LINES}
            response = http.post(f"{command_api.base_url}/orders", json=body, timeout=30)
            assert response.status_code == 201, response.text
        response = http.delete(f"{command_api.base_url}/orders/rb-2", timeout=30)
        assert response.status_code == 200, response.text
    env = admin_env(
        services,
        COMMAND_API_URL=command_api.base_url,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        KAFKA_TOPIC=kafka_topic,
    )

    result = run_admin(env, "rebuild", "--page-size", "2", "--reason", REASON)

    assert result.returncode == 0, result.stderr
    [audit] = audit_lines(result.stderr)
    assert audit["msg"] == "orders-admin rebuild"
    assert (audit["os_user"], audit["reason"]) == (getpass.getuser(), REASON)
    assert (audit["page_size"], audit["no_kafka"]) == (2, False)
    assert "rebuild [" in result.stderr and "4/4 events" in result.stderr
    assert "rebuilt the read model from 4 events" in result.stderr
    engine = read_model_at(services)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(orders.c.order_id, orders.c.version)).all()
            positions = load_positions(conn, kafka_topic)
    finally:
        engine.dispose()
    assert sorted(rows) == [("rb-1", 1), ("rb-2", 2), ("rb-3", 1)]
    assert positions == {0: 0, 1: 0, 2: 0}  # the topic's ends: nothing was published yet
    projector = status_json(env)["projector"]
    assert (projector["state"], projector["total_lag"], projector["parked_events"]) == (
        "ok",
        0,
        0,
    )


def test_rebuild_rejects_a_page_size_out_of_range(tmp_path: Path) -> None:
    env = admin_env(ServiceRunner(tmp_path, prepare_event_store=False))

    result = run_admin(env, "rebuild", "--page-size", "0", "--reason", REASON)

    assert result.returncode == 2
    assert "must be between 1 and 1000" in result.stderr
