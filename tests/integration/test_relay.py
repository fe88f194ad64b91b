"""The relay (event log -> Kafka) with real processes, a real SQLite file and a real broker."""

from __future__ import annotations

import sqlite3
import statistics
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary
from cloudevents.core.formats.json import JSONFormat
from kafka import TopicPartition
from prometheus_client import REGISTRY
from sqlalchemy import Engine, text

from command_service.adapters.event_store import EventStore, NewEvent, StreamAppend
from command_service.http.metrics import RelayMetrics
from command_service.outbox.lease import LeaseHeartbeat, LeaseLost, RelayLease
from command_service.outbox.producer_factory import DefaultProducerFactory
from command_service.outbox.relay import Relay, create_relay_engine
from shared.contract.envelope import EventEnvelope
from shared.contract.principal import ACCOUNTS_DEPOSIT, ACCOUNTS_WRITE, ORDERS_FULFIL, ORDERS_WRITE
from shared.infra import kafka as kafka_clients
from shared.infra.config import Settings
from shared.infra.db import create_database_engine
from shared.infra.kafka import create_consumer, ensure_topic
from tests.support.auth import bearer
from tests.support.processes import HttpService, ServiceRunner, wait_until

SOURCE = "urn:test:relay"
LINES = [{"product_id": "p-1", "quantity": 2, "unit_price": "12.50"}]
CUSTOMER_SUB = "user-c-1"
WAREHOUSE_SUB = "warehouse"
GATEWAY_SUB = "payment-gateway"


# --- reading the topic ---------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """One consumed message, decoded, with when this process saw it."""

    key: str
    value: bytes
    envelope: EventEnvelope
    headers: dict[str, bytes]
    partition: int
    offset: int
    at: float


class TopicReader:
    """Reads a whole topic from the beginning in a background thread (no consumer group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
        self.consumer = create_consumer(settings, group_id=None, fetch_max_wait_ms=50)
        partitions = wait_until(lambda: self.consumer.partitions_for_topic(topic), 30, topic)
        self.consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        self.consumer.seek_to_beginning()
        self._received: dict[tuple[int, int], Received] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="topic-reader", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                batches = self.consumer.poll(timeout_ms=100)
            except Exception:  # the broker is down on purpose in some tests
                time.sleep(0.1)
                continue
            now = time.monotonic()
            with self._lock:
                for records in batches.values():
                    for r in records:
                        # Keyed by offset: a consumer re-fetch is not a relay duplicate.
                        self._received.setdefault(
                            (r.partition, r.offset),
                            Received(
                                r.key.decode(),
                                r.value,
                                EventEnvelope.from_json(r.value),
                                dict(r.headers),
                                r.partition,
                                r.offset,
                                now,
                            ),
                        )

    def records(self) -> list[Received]:
        """Everything consumed so far, in (partition, offset) order."""
        with self._lock:
            return [self._received[k] for k in sorted(self._received)]

    def event_ids(self) -> set[str]:
        return {r.envelope.event_id for r in self.records()}

    def wait_for(self, events: Sequence[EventEnvelope], timeout: float = 60) -> list[Received]:
        """Wait until every given event was consumed; all records consumed so far."""
        wanted = {e.event_id for e in events}
        wait_until(
            lambda: wanted <= self.event_ids(),
            timeout,
            lambda: f"{len(wanted - self.event_ids())} of {len(wanted)} events never arrived",
            interval=0.02,
        )
        return self.records()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.consumer.close()


@pytest.fixture
def topic_reader(kafka_bootstrap: str, kafka_topic: str) -> Iterator[TopicReader]:
    ensure_topic(kafka_bootstrap, kafka_topic, 3, 1)
    reader = TopicReader(kafka_bootstrap, kafka_topic)
    yield reader
    reader.close()


def assert_streams_in_order(records: Sequence[Received], log: Sequence[EventEnvelope]) -> int:
    """Every log event arrived, keyed by order id, each key's first copies in version order.

    Returns how many duplicate copies (same event_id) were seen.
    """
    expected: dict[str, list[int]] = defaultdict(list)
    for event in log:
        expected[event.stream_id].append(event.version)
    first_copies: dict[str, list[int]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    seen: set[str] = set()
    for record in records:
        assert record.key == record.envelope.stream_id
        partitions[record.key].add(record.partition)
        if record.envelope.event_id not in seen:
            seen.add(record.envelope.event_id)
            first_copies[record.key].append(record.envelope.version)
    assert seen == {e.event_id for e in log}
    assert dict(first_copies) == dict(expected)
    assert all(len(p) == 1 for p in partitions.values()), "a key was spread over partitions"
    return len(records) - len(seen)


# --- producing events ----------------------------------------------------------------------


class Orders:
    """A tiny command API client (one per thread: requests sessions are not thread-safe).

    Customer c-1's own token places, pays and cancels; the warehouse's ships and delivers.
    """

    def __init__(self, api: HttpService) -> None:
        self.base_url = api.base_url
        self.session = requests.Session()
        data_dir = Path(api.env["DATA_DIR"])
        self.customer = bearer(data_dir, CUSTOMER_SUB, [ORDERS_WRITE, ACCOUNTS_WRITE], "c-1")
        self.warehouse = bearer(data_dir, WAREHOUSE_SUB, [ORDERS_FULFIL])
        gateway = bearer(data_dir, GATEWAY_SUB, [ACCOUNTS_DEPOSIT])
        # c-1 pays for every order. Opening again with the same request, and depositing again
        # with the same deposit_id, are safe retries: every thread's client does both.
        self._call("post", "/accounts", 201, self.customer, json={"customer_id": "c-1"})
        deposit = {"amount": "1000000.00", "deposit_id": "funds"}
        self._call("post", "/accounts/c-1/deposits", 200, gateway, json=deposit)

    def place(self, order_id: str, correlation_id: str | None = None) -> dict[str, Any]:
        headers = {"X-Correlation-ID": correlation_id} if correlation_id else {}
        body = {"order_id": order_id, "customer_id": "c-1", "lines": LINES}
        return self._call("post", "/orders", 201, {**self.customer, **headers}, json=body)

    def change_status(self, order_id: str, status: str) -> dict[str, Any]:
        body = {"status": status}
        caller = self.customer if status == "PAID" else self.warehouse
        return self._call("post", f"/orders/{order_id}/status", 200, caller, json=body)

    def cancel(self, order_id: str) -> dict[str, Any]:
        return self._call("delete", f"/orders/{order_id}", 200, self.customer)

    def _call(
        self, method: str, path: str, status: int, headers: dict[str, str], **kwargs: Any
    ) -> dict[str, Any]:
        response = self.session.request(
            method, self.base_url + path, timeout=30, headers=headers, **kwargs
        )
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        return body


def run_lifecycles(
    api: HttpService, orders_by_index: Sequence[tuple[int, str]]
) -> dict[int, float]:
    """Drive orders to DELIVERED (every third is cancelled); when each position was acked."""
    orders = Orders(api)
    acked_at: dict[int, float] = {}

    def record(result: dict[str, Any]) -> None:
        acked_at[result["position"]] = time.monotonic()

    for n, order_id in orders_by_index:
        record(orders.place(order_id))
        if n % 3 == 2:
            record(orders.cancel(order_id))
            continue
        for status in ("PAID", "SHIPPED", "DELIVERED"):
            record(orders.change_status(order_id, status))
    return acked_at


def run_commands_in_threads(api: HttpService, orders: int, threads: int) -> dict[int, float]:
    """Lifecycles of `orders` new orders, split over threads (each order stays in one thread)."""
    prefix = uuid.uuid4().hex[:8]
    order_ids = [(i, f"o-{prefix}-{i}") for i in range(orders)]
    with ThreadPoolExecutor(threads) as pool:
        parts = pool.map(lambda k: run_lifecycles(api, order_ids[k::threads]), range(threads))
        acked_at: dict[int, float] = {}
        for part in parts:
            acked_at.update(part)
    return acked_at


def append_backlog(store: EventStore, streams: int, events_per_stream: int) -> None:
    """Write events straight to the log (fast): `streams` orders with a few events each."""
    prefix = uuid.uuid4().hex[:8]
    for start in range(0, streams, 100):
        appends = [
            StreamAppend(
                f"bk-{prefix}-{i}",
                0,
                [
                    NewEvent("OrderPlaced" if v == 1 else "OrderNoted", {"n": v}, {"k": i})
                    for v in range(1, events_per_stream + 1)
                ],
            )
            for i in range(start, min(start + 100, streams))
        ]
        store.append_streams(appends)


def auth_context(record: Received) -> tuple[str, str | None]:
    """The CloudEvents auth context headers of a message: (ce_authtype, ce_authid or None)."""
    authid = record.headers.get("ce_authid")
    return record.headers["ce_authtype"].decode(), authid.decode() if authid else None


def whole_log(store: EventStore) -> list[EventEnvelope]:
    return store.read_all(0, limit=1_000_000)


def checkpoint(store: EventStore, topic: str) -> RelayLease:
    """A view of a topic's relay_state row that never takes the lease itself."""
    lease = RelayLease(store.engine, topic, owner="test-observer", ttl_seconds=1)
    lease.create_schema()
    return lease


def holder_pid(view: RelayLease) -> int | None:
    owner = view.holder().owner
    return int(owner.split(":")[1]) if owner else None


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_commands_reach_kafka_in_stream_order(
    services: ServiceRunner,
    command_api: HttpService,
    event_log: EventStore,
    kafka_bootstrap: str,
    kafka_topic: str,
    topic_reader: TopicReader,
) -> None:
    relay = services.relay(kafka_bootstrap, kafka_topic)
    relay.wait_for_output("acquired the relay lease")

    acked_at = run_commands_in_threads(command_api, orders=30, threads=4)

    log = whole_log(event_log)
    order_events = [e for e in log if not e.stream_id.startswith("account:")]
    assert len(order_events) == len(acked_at) == 100
    # Plus the account's opening (2 events) and one debit per paid order (20), same topic.
    assert len(log) == 100 + 2 + 20
    records = topic_reader.wait_for(log)
    assert assert_streams_in_order(records, log) == 0
    by_id = {e.event_id: e for e in log}
    assert all(r.value == by_id[r.envelope.event_id].to_json() for r in records)
    latencies = sorted(
        (r.at - acked_at[r.envelope.position]) * 1000
        for r in records
        if r.envelope.position in acked_at
    )
    print(
        f"commit(201/200) -> consumed latency over {len(latencies)} commands: "
        f"p50={statistics.median(latencies):.1f} ms, "
        f"p90={latencies[int(len(latencies) * 0.9)]:.1f} ms, max={latencies[-1]:.1f} ms"
    )

    assert relay.stop() == 0
    view = checkpoint(event_log, kafka_topic)
    assert view.published_position() == log[-1].position
    assert view.holder().owner is None, "a stopped relay must release its lease"


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_messages_are_cloudevents_in_binary_mode(
    services: ServiceRunner,
    command_api: HttpService,
    event_log: EventStore,
    kafka_bootstrap: str,
    kafka_topic: str,
    topic_reader: TopicReader,
) -> None:
    services.relay(kafka_bootstrap, kafka_topic, CLOUDEVENTS_SOURCE=SOURCE)
    orders = Orders(command_api)
    orders.place("ce-1", correlation_id="corr-ce-1")
    orders.change_status("ce-1", "PAID")
    orders.cancel("ce-1")
    # An event from before authentication: its metadata names no principal.
    event_log.append("old-1", 0, [NewEvent("OrderPlaced", {"n": 1}, {"correlation_id": "x"})])

    log = whole_log(event_log)
    all_records = topic_reader.wait_for(log)
    # The account's events (opening, the debit, the refund) share the topic under their key.
    account_records = [r for r in all_records if r.key == "account:c-1"]
    assert [r.envelope.type for r in account_records] == [
        "AccountOpened",
        "FundsDeposited",
        "AccountDebited",
        "AccountCredited",
    ]
    # The auth context extension: the customer is an app user, the gateway a service account.
    assert [auth_context(r) for r in account_records] == [
        ("app_user", CUSTOMER_SUB),
        ("service_account", GATEWAY_SUB),
        ("app_user", CUSTOMER_SUB),
        ("app_user", CUSTOMER_SUB),
    ]
    [old] = [r for r in all_records if r.key == "old-1"]
    assert auth_context(old) == ("unknown", None)
    assert "ce_authid" not in old.headers
    records = [r for r in all_records if r.key == "ce-1"]
    assert len(records) == 3
    order_log = [e for e in log if e.stream_id == "ce-1"]
    for record, stored in zip(records, order_log, strict=True):
        message = KafkaMessage(headers=record.headers, key=record.key.encode(), value=record.value)
        event = from_binary(message, JSONFormat())
        assert event.get_specversion() == "1.0"
        assert event.get_id() == stored.event_id
        assert event.get_type() == f"orders.{stored.type}"
        assert event.get_source() == SOURCE
        assert event.get_subject() == "ce-1"
        assert event.get_time() == stored.occurred_at
        assert event.get_datacontenttype() == "application/json"
        assert event.get_data() == stored.to_dict()
        assert event.get_extension("partitionkey") == "ce-1"
        assert event.get_extension("authtype") == "app_user"
        assert event.get_extension("authid") == CUSTOMER_SUB == stored.metadata["principal"]["sub"]
        assert record.headers["correlation_id"] == stored.metadata["correlation_id"].encode()
    assert records[0].headers["correlation_id"] == b"corr-ce-1"
    assert [r.envelope.type for r in records] == [
        "OrderPlaced",
        "OrderStatusChanged",
        "OrderCancelled",
    ]


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_relay_killed_mid_stream_resumes_without_loss(
    services: ServiceRunner,
    event_log: EventStore,
    kafka_bootstrap: str,
    kafka_topic: str,
    topic_reader: TopicReader,
) -> None:
    append_backlog(event_log, streams=500, events_per_stream=4)
    log = whole_log(event_log)
    view = checkpoint(event_log, kafka_topic)
    # Small batches: many checkpoints, so the kill lands between two of them.
    env = {"RELAY_BATCH_SIZE": "10", "RELAY_LEASE_SECONDS": "2"}
    relay = services.relay(kafka_bootstrap, kafka_topic, **env)

    wait_until(lambda: view.published_position() >= 300, 60, relay.tail, interval=0.005)
    relay.kill()
    at_kill = view.published_position()
    print(f"relay killed at published position {at_kill} of {len(log)}")
    assert at_kill < log[-1].position, "the backlog was already published: not mid-stream"
    assert holder_pid(view) == relay.pid, "a killed relay cannot have released its lease"

    relay.start()
    records = topic_reader.wait_for(log)
    duplicates = assert_streams_in_order(records, log)
    print(f"after restart: {len(records)} messages, {duplicates} duplicates")
    wait_until(lambda: view.published_position() == log[-1].position, 30, relay.tail)


@pytest.mark.kafka
@pytest.mark.timeout(180)
def test_commands_succeed_while_the_broker_is_down(
    services: ServiceRunner,
    command_api: HttpService,
    event_log: EventStore,
    kafka_bootstrap: str,
    kafka_topic: str,
    local_kafka: Any,
    topic_reader: TopicReader,
) -> None:
    relay = services.relay(kafka_bootstrap, kafka_topic, KAFKA_DELIVERY_TIMEOUT_MS="2000")
    orders = Orders(command_api)
    for i in range(5):
        orders.place(f"before-{i}")
    topic_reader.wait_for(whole_log(event_log))

    local_kafka.stop()
    try:
        mark = relay.output_size()
        for i in range(20):
            orders.place(f"during-{i}")
            orders.change_status(f"during-{i}", "PAID")
        # The relay must have hit the outage (not just been idle through it) before it ends.
        relay.wait_for_output("Kafka unavailable", timeout=60, after=mark)
        assert relay.is_running
    finally:
        if not local_kafka.is_running:
            local_kafka.start()

    log = whole_log(event_log)
    assert len(log) == 45 + 2 + 20  # orders, the account's opening, one debit per payment
    records = topic_reader.wait_for(log, timeout=90)
    assert_streams_in_order(records, log)


@pytest.mark.kafka
@pytest.mark.timeout(120)
def test_only_one_of_two_relays_publishes_and_the_other_takes_over(
    services: ServiceRunner,
    command_api: HttpService,
    event_log: EventStore,
    kafka_bootstrap: str,
    kafka_topic: str,
    topic_reader: TopicReader,
) -> None:
    env = {"RELAY_LEASE_SECONDS": "2"}
    first = services.relay(kafka_bootstrap, kafka_topic, name="relay-a", **env)
    second = services.relay(kafka_bootstrap, kafka_topic, name="relay-b", **env)
    view = checkpoint(event_log, kafka_topic)
    relays = {r.pid: r for r in (first, second)}
    holder_id = wait_until(lambda: holder_pid(view), 30, "nobody took the lease")
    holder = relays[holder_id]
    standby = second if holder is first else first
    standby.wait_for_output("waiting for the relay lease")

    run_commands_in_threads(command_api, orders=12, threads=3)
    log = whole_log(event_log)
    records = topic_reader.wait_for(log)
    assert assert_streams_in_order(records, log) == 0
    assert "acquired the relay lease" not in standby.output()
    assert holder_pid(view) == holder.pid

    holder.kill()
    run_commands_in_threads(command_api, orders=6, threads=2)
    standby.wait_for_output("acquired the relay lease", timeout=30)
    assert holder_pid(view) == standby.pid
    log = whole_log(event_log)
    records = topic_reader.wait_for(log)
    assert_streams_in_order(records, log)


# --- the lease on its own (no Kafka) -------------------------------------------------------


@pytest.fixture
def lease_engine(database_url: str) -> Iterator[Engine]:
    engine = create_database_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def topic() -> str:
    # Unique, because the PostgreSQL database is shared by the whole session.
    return f"orders.events.{uuid.uuid4().hex[:8]}"


def test_lease_acquire_renew_expire_and_fencing(lease_engine: Engine, topic: str) -> None:
    a = RelayLease(lease_engine, topic, "relay-a", ttl_seconds=1)
    b = RelayLease(lease_engine, topic, "relay-b", ttl_seconds=1)
    other_topic = RelayLease(lease_engine, f"{topic}.other", "relay-b", ttl_seconds=1)
    a.create_schema()

    assert a.try_acquire()
    assert a.try_acquire(), "re-acquiring our own lease renews it"
    assert not b.try_acquire()
    assert other_topic.try_acquire(), "leases are per topic"
    assert a.holder().owner == "relay-a"

    a.store_position(5)
    a.renew()
    assert b.published_position() == 5
    with pytest.raises(LeaseLost):
        b.store_position(7)
    with pytest.raises(LeaseLost):
        b.renew()
    assert a.published_position() == 5

    # a stops renewing (as if it froze): b gets the lease once it expires, not before.
    wait_until(b.try_acquire, timeout=10, message="b never got the expired lease")
    assert a.holder().owner == "relay-b"
    with pytest.raises(LeaseLost):
        a.store_position(6)
    with pytest.raises(LeaseLost):
        a.renew()
    assert not a.try_acquire()
    assert b.published_position() == 5
    b.store_position(9)

    b.release()
    assert a.holder().owner is None
    assert a.try_acquire(), "a released lease is free at once"
    assert a.published_position() == 9, "the position survives a change of holder"
    b.release()  # not b's any more: a no-op
    assert a.holder().owner == "relay-a"


def test_heartbeat_keeps_the_lease_and_reports_losing_it(lease_engine: Engine, topic: str) -> None:
    a = RelayLease(lease_engine, topic, "relay-a", ttl_seconds=1)
    b = RelayLease(lease_engine, topic, "relay-b", ttl_seconds=1)
    a.create_schema()
    assert a.try_acquire()
    heartbeat = LeaseHeartbeat(a, interval_seconds=0.2)
    heartbeat.start()
    try:
        deadline = time.monotonic() + 3  # three TTLs
        while time.monotonic() < deadline:
            assert not b.try_acquire(), "a renewed lease must never be taken"
            time.sleep(0.1)
        assert not heartbeat.lost.is_set()

        # Another relay takes the row over (as after a freeze): the heartbeat notices.
        with lease_engine.begin() as conn:
            conn.execute(
                text("UPDATE relay_state SET lease_owner = 'relay-b' WHERE topic = :topic"),
                {"topic": topic},
            )
        wait_until(heartbeat.lost.is_set, timeout=5, message="heartbeat never noticed")
    finally:
        heartbeat.stop()
    with pytest.raises(LeaseLost):
        a.store_position(1)


def test_heartbeat_stops_vouching_for_a_lease_before_it_expires(
    lease_engine: Engine, topic: str
) -> None:
    a = RelayLease(lease_engine, topic, "relay-a", ttl_seconds=1)
    b = RelayLease(lease_engine, topic, "relay-b", ttl_seconds=1)
    a.create_schema()
    asked_at = time.monotonic()
    assert a.try_acquire()
    # Renewing far less often than the TTL: as if the relay (heartbeat and all) froze.
    heartbeat = LeaseHeartbeat(a, interval_seconds=60)
    heartbeat.start(acquired_at=asked_at)
    try:
        assert heartbeat.holds_lease()
        wait_until(lambda: not heartbeat.holds_lease(), timeout=5, message="still vouching")
        lapsed_after = time.monotonic() - asked_at
        # Within the TTL minus the margin: the stored lease has not expired yet.
        assert lapsed_after < 1 - heartbeat.safety_margin + 0.1
        assert not b.try_acquire(), "our view lapses before another relay may take over"
        assert not heartbeat.lost.is_set(), "lapsed, not taken"
    finally:
        heartbeat.stop()


def sqlite_engine(path: Path) -> Engine:
    return create_database_engine(f"sqlite:///{path}")


def test_a_standby_asks_for_a_held_lease_without_taking_the_write_lock(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path / "events.db")
    a = RelayLease(engine, "orders.events", "relay-a", ttl_seconds=30)
    b = RelayLease(engine, "orders.events", "relay-b", ttl_seconds=30)
    a.create_schema()
    assert a.try_acquire()
    # A command append holds the write lock (or a process froze holding it).
    writer = sqlite3.connect(tmp_path / "events.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    answers: list[bool] = []
    try:
        asking = threading.Thread(target=lambda: answers.append(b.try_acquire()), daemon=True)
        asking.start()
        asking.join(2)
        assert answers == [False], "the standby queued for the write lock to learn it is held"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        engine.dispose()


@pytest.mark.parametrize(("configured", "relay_level"), [("FULL", 1), ("EXTRA", 1), ("OFF", 0)])
def test_the_relay_commits_its_checkpoints_without_an_fsync(
    tmp_path: Path, configured: str, relay_level: int
) -> None:
    settings = Settings.from_env(
        {
            "EVENT_STORE_URL": f"sqlite:///{tmp_path / 'events.db'}",
            "EVENT_STORE_SQLITE_SYNCHRONOUS": configured,
        }
    )
    engine = create_relay_engine(settings)
    try:
        with engine.connect() as conn:
            # 1 is NORMAL: in WAL mode a commit holds the write lock without waiting on disk.
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == relay_level
    finally:
        engine.dispose()


# --- the relay in-process, with a producer that only records (no Kafka) --------------------


class RecordingProducer:
    """Acknowledges every send at once and remembers each position it was given."""

    def __init__(self, on_send: Any = None) -> None:
        self.sent: list[int] = []
        self.on_send = on_send

    def send(self, topic: str, key: bytes, value: bytes, headers: Any) -> Any:
        position = EventEnvelope.from_json(value).position
        self.sent.append(position)
        if self.on_send is not None:
            self.on_send(position)
        return Acked()

    def close(self, timeout: float | None = None) -> None:
        pass


class Acked:
    def get(self, timeout: float | None = None) -> None:
        return None


class PausableLease(RelayLease):
    """A lease whose renewals wait while `paused` is set, as a frozen process's would."""

    def __init__(self, engine: Engine, topic: str, owner: str, ttl_seconds: float) -> None:
        super().__init__(engine, topic, owner, ttl_seconds)
        self.paused = threading.Event()

    def renew(self) -> None:
        while self.paused.is_set():
            time.sleep(0.01)
        super().renew()


@pytest.fixture
def small_log(tmp_path: Path) -> Iterator[EventStore]:
    engine = sqlite_engine(tmp_path / "events.db")
    store = EventStore(engine)
    store.create_schema()
    RelayLease(engine, "t", "setup", 1).create_schema()
    append_backlog(store, streams=1, events_per_stream=3)
    yield store
    engine.dispose()


def run_in_thread(relay: Relay) -> threading.Thread:
    thread = threading.Thread(target=relay.run, name="relay", daemon=True)
    thread.start()
    return thread


def test_a_relay_paused_past_its_lease_sends_nothing_more(small_log: EventStore) -> None:
    settings = Settings.from_env({"RELAY_LEASE_SECONDS": "1", "KAFKA_TOPIC": "t"})
    lease = PausableLease(small_log.engine, "t", "relay-a", ttl_seconds=1)
    standby = RelayLease(small_log.engine, "t", "relay-b", ttl_seconds=1)
    taken = threading.Event()

    def pause_at_first_send(position: int) -> None:
        if position == 1:
            # Everything stops (main thread and heartbeat) until the standby took over.
            lease.paused.set()
            taken.wait(10)
            lease.paused.clear()

    producer = RecordingProducer(pause_at_first_send)
    relay = Relay(settings, small_log, lease, producer_factory=lambda _: producer)
    thread = run_in_thread(relay)
    try:
        wait_until(lease.paused.is_set, 10, "the relay never sent")
        wait_until(standby.try_acquire, 10, "the standby never got the expired lease")
        taken.set()
        wait_until(lambda: relay.stopping or not lease.paused.is_set(), 5)
        time.sleep(0.3)  # time enough to send the rest of the batch, were it going to
    finally:
        relay.stop()
        thread.join(10)
    assert producer.sent == [1], "positions 2 and 3 were sent after the lease lapsed"
    assert standby.holder().owner == "relay-b"


def test_an_idle_relay_polls_cheaply_and_wakes_for_a_new_event(small_log: EventStore) -> None:
    settings = Settings.from_env({"RELAY_LEASE_SECONDS": "2", "KAFKA_TOPIC": "t"})
    lease = RelayLease(small_log.engine, "t", "relay-a", ttl_seconds=2)
    producer = RecordingProducer()
    reads: list[int] = []
    read_all = small_log.read_all

    def counted_read_all(after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        reads.append(after_position)
        return read_all(after_position, limit)

    small_log.read_all = counted_read_all  # type: ignore[method-assign]
    relay = Relay(settings, small_log, lease, producer_factory=lambda _: producer)
    thread = run_in_thread(relay)
    try:
        wait_until(lambda: lease.published_position() == 3, 10, "the backlog was not published")
        reads_before = len(reads)
        time.sleep(0.5)  # 100 poll intervals of 5 ms
        idle_reads = len(reads) - reads_before
        append_backlog(small_log, streams=1, events_per_stream=1)
        appended = time.monotonic()
        wait_until(lambda: lease.published_position() == 4, 5, "the new event was not published")
        waited_ms = (time.monotonic() - appended) * 1000
    finally:
        relay.stop()
        thread.join(10)
    assert idle_reads <= 1, f"an idle relay read the log {idle_reads} times in 0.5 s"
    assert waited_ms < 200, f"a new event waited {waited_ms:.0f} ms to be published"
    assert producer.sent == [1, 2, 3, 4]


def test_the_relay_counts_each_time_it_takes_the_lease(small_log: EventStore) -> None:
    topic = f"t-{uuid.uuid4().hex[:8]}"  # its own series of the process-wide counter
    settings = Settings.from_env({"RELAY_LEASE_SECONDS": "1", "KAFKA_TOPIC": topic})
    lease = PausableLease(small_log.engine, topic, "relay-a", ttl_seconds=1)
    standby = RelayLease(small_log.engine, topic, "relay-b", ttl_seconds=1)
    producer = RecordingProducer()
    relay = Relay(
        settings,
        small_log,
        lease,
        producer_factory=lambda _: producer,
        observer=RelayMetrics(topic),
    )

    def acquisitions() -> float:
        labels = {"topic": topic}
        return REGISTRY.get_sample_value("relay_lease_acquisitions_total", labels) or 0.0

    thread = run_in_thread(relay)
    try:
        wait_until(lambda: lease.published_position() == 3, 10, "the backlog was not published")
        assert acquisitions() == 1
        # The holder stalls, the standby takes over, then lets its lease lapse: the first
        # relay takes the lease back, and that is counted again.
        lease.paused.set()
        wait_until(standby.try_acquire, 10, "the standby never got the expired lease")
        lease.paused.clear()
        wait_until(lambda: acquisitions() == 2, 10, lambda: f"{acquisitions()} acquisitions")
        assert lease.holder().owner == "relay-a"
    finally:
        relay.stop()
        thread.join(10)
    assert acquisitions() == 2


def test_a_rebuilt_producer_does_not_ask_for_the_topic_again(
    kafka_bootstrap: str, kafka_topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The relay rebuilds its producer after every failed batch. CreateTopics is forwarded to
    # the active controller, and after a broker is cut off that may be the one it waits on.
    admins: list[str] = []
    create_admin = kafka_clients.create_admin

    def counted_create_admin(settings: Settings, client_id: str = "orders-admin") -> Any:
        admins.append(client_id)
        return create_admin(settings, client_id)

    monkeypatch.setattr(kafka_clients, "create_admin", counted_create_admin)
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "KAFKA_TOPIC": kafka_topic,
            "KAFKA_TOPIC_PARTITIONS": "3",
        }
    )
    build = DefaultProducerFactory()
    for _ in range(3):
        build(settings).close(timeout=0)
    assert len(admins) == 1, "the topic is made sure of at the first build only"
