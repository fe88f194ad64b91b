"""Tests of the local Kafka tooling (devtools/local_kafka.py) against a real broker."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from devtools.local_kafka import KAFKA_VERSION, LocalKafka, fetch_jars

pytestmark = pytest.mark.kafka


def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> tuple[int, int]:
    """Send one message with headers, wait for the ack, return (partition, offset)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        headers = [("event-type", b"OrderPlaced"), ("trace-id", b"t-123")]
        metadata = producer.send(topic, key=key, value=value, headers=headers).get(timeout=30)
        return metadata.partition, metadata.offset
    finally:
        producer.close()


def _consume(bootstrap: str, topic: str, count: int, group_id: str | None = None) -> list[Any]:
    """Read up to count records from the beginning; gives up after 20 s without a record."""
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group_id,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20_000,
    )
    records: list[Any] = []
    try:
        for record in consumer:
            records.append(record)
            if len(records) >= count:
                break
        if group_id is not None and records:
            consumer.commit()
    finally:
        consumer.close()
    return records


def _committed(bootstrap: str, topic: str, partition: int, group_id: str) -> int | None:
    """Return the group's committed offset for one partition."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id)
    try:
        offset: int | None = consumer.committed(TopicPartition(topic, partition))
        return offset
    finally:
        consumer.close()


def test_produce_and_consume_keyed_message_with_headers(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    key, value = b"order-42", b'{"type": "OrderPlaced", "order_id": 42}'
    partition, offset = _produce(kafka_bootstrap, kafka_topic, key, value)

    group_id = f"g-{uuid.uuid4().hex[:8]}"
    [record] = _consume(kafka_bootstrap, kafka_topic, 1, group_id=group_id)

    assert (record.key, record.value) == (key, value)
    assert (record.partition, record.offset) == (partition, offset)
    assert record.headers == [("event-type", b"OrderPlaced"), ("trace-id", b"t-123")]
    assert _committed(kafka_bootstrap, kafka_topic, partition, group_id) == offset + 1


def test_stop_then_start_keeps_topics_messages_and_offsets(
    local_kafka: LocalKafka, kafka_topic: str
) -> None:
    bootstrap = local_kafka.bootstrap_servers
    partition, offset = _produce(bootstrap, kafka_topic, b"order-7", b"before-restart")
    group_id = f"g-{uuid.uuid4().hex[:8]}"
    assert len(_consume(bootstrap, kafka_topic, 1, group_id=group_id)) == 1
    cluster_id = local_kafka.cluster_id

    local_kafka.stop()
    try:
        assert not local_kafka.is_running
        assert local_kafka.pid is None
        assert not local_kafka.pid_path.exists()
    finally:
        local_kafka.start()

    assert local_kafka.cluster_id == cluster_id, "storage was reformatted"
    [record] = _consume(bootstrap, kafka_topic, 1)
    assert (record.key, record.value) == (b"order-7", b"before-restart")
    assert (record.partition, record.offset) == (partition, offset)
    assert _committed(bootstrap, kafka_topic, partition, group_id) == offset + 1


def test_kill_then_start_recovers(local_kafka: LocalKafka, kafka_topic: str) -> None:
    bootstrap = local_kafka.bootstrap_servers
    _produce(bootstrap, kafka_topic, b"order-9", b"before-crash")

    local_kafka.kill()
    try:
        assert not local_kafka.is_running
    finally:
        local_kafka.start()

    assert local_kafka.is_ready()
    [record] = _consume(bootstrap, kafka_topic, 1)
    assert record.value == b"before-crash"


def test_fetch_jars_is_idempotent() -> None:
    first = fetch_jars()

    began = time.monotonic()
    second = fetch_jars()
    elapsed = time.monotonic() - began

    assert second == first
    assert elapsed < 1.0
    assert (first / ".complete").exists()
    assert list(first.glob(f"kafka_2.13-{KAFKA_VERSION}.jar"))


def test_concurrent_fetch_jars_into_empty_dir_yields_one_complete_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    libs = tmp_path / "libs"
    monkeypatch.setenv("KAFKA_LIBS_DIR", str(libs))
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(fetch_jars())
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)

    assert errors == []
    assert results == [libs] * 3
    assert (libs / ".complete").exists()
    assert list(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar"))
    # Only the final folder and the lock file remain: no half-filled staging folders.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".libs.lock", "libs"]
