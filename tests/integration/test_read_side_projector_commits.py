"""The projector's Kafka side: offsets are committed only after their rows, only for partitions
still owned, every consumer call is made from one thread, and a failed batch is read again.
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from kafka import TopicPartition
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from query_service.projector.applier import EventApplier
from query_service.projector.consumer import Projector, ProjectorOptions
from query_service.read_model.order_writer import load_positions
from tests.integration.query_support import new_read_model, project_directly, sample_log, view_rows

TOPIC = "orders.events"
PARTITIONS = 3


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


class FakeConsumer:
    """A KafkaConsumer stand-in over fixed partitions; checks it is only called from one thread."""

    def __init__(self, engine: Engine, records: dict[int, list[Record]], stop: threading.Event):
        self.engine = engine
        self.records = records
        self.stop = stop
        self.position = dict.fromkeys(records, 0)
        self.owned = {TopicPartition(TOPIC, p) for p in records}
        self.commits: list[dict[int, int]] = []
        self.threads: set[int] = set()

    def _called(self) -> None:
        self.threads.add(threading.get_ident())

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self._called()
        listener.on_partitions_assigned(set(self.owned))

    def poll(self, timeout_ms: int, max_records: int) -> dict[TopicPartition, list[Record]]:
        self._called()
        batch: dict[TopicPartition, list[Record]] = {}
        for tp in sorted(self.owned):
            start = self.position[tp.partition]
            taken = self.records[tp.partition][start : start + max_records // PARTITIONS]
            if taken:
                batch[tp] = taken
                self.position[tp.partition] = start + len(taken)
        if not batch and self.done():
            self.stop.set()
        return batch

    def done(self) -> bool:
        with self.engine.connect() as conn:
            stored = load_positions(conn, TOPIC)
        return all(stored.get(tp.partition) == len(self.records[tp.partition]) for tp in self.owned)

    def assignment(self) -> set[TopicPartition]:
        self._called()
        return set(self.owned)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._called()
        self.position[tp.partition] = offset

    def seek_to_beginning(self, tp: TopicPartition) -> None:
        self.seek(tp, 0)

    def commit(self, offsets: dict[TopicPartition, Any]) -> None:
        self._called()
        committed = {tp.partition: meta.offset for tp, meta in offsets.items()}
        with self.engine.connect() as conn:
            stored = load_positions(conn, TOPIC)
        assert all(stored[p] >= offset for p, offset in committed.items()), "ahead of the rows"
        self.commits.append(committed)

    def close(self, autocommit: bool) -> None:
        self._called()


def topic_records() -> tuple[list[Any], dict[int, list[Record]]]:
    log = sample_log(orders=40)
    records: dict[int, list[Record]] = {p: [] for p in range(PARTITIONS)}
    for envelope in log.envelopes:
        key = envelope.stream_id.encode()
        partition = zlib.crc32(key) % PARTITIONS
        offset = len(records[partition])
        records[partition].append(
            Record(TOPIC, partition, offset, key, envelope.to_json(), [("ce_id", b"x")])
        )
    return log.envelopes, records


def run_projector(engine: Engine, consumer: FakeConsumer, stop: threading.Event) -> Projector:
    options = replace(ProjectorOptions(), max_batch=12, log_applied_events=False)
    projector = Projector(engine, TOPIC, lambda: consumer, EventApplier(None), options)
    runner = threading.Thread(target=projector.run, args=(stop,))
    runner.start()
    runner.join(60)
    assert not runner.is_alive()
    return projector


def test_offsets_reach_kafka_after_their_rows_and_a_failed_batch_is_read_again(
    tmp_path: Path,
) -> None:
    envelopes, records = topic_records()
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    stop = threading.Event()
    consumer = FakeConsumer(engine, records, stop)
    original = Projector._apply_batch_once
    calls = [0]

    def failing_third(self: Projector, batch: Any, isolated: bool) -> dict[int, int]:
        calls[0] += 1
        if calls[0] == 3:
            raise OperationalError("INSERT", None, Exception("database is locked"))
        return original(self, batch, isolated)

    Projector._apply_batch_once = failing_third  # type: ignore[method-assign]
    try:
        projector = run_projector(engine, consumer, stop)
    finally:
        Projector._apply_batch_once = original  # type: ignore[method-assign]

    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, envelopes)
    assert view_rows(engine) == view_rows(reference)
    assert projector.stats.retries == 1
    assert projector.stats.applied == len(envelopes)
    assert projector.stats.duplicates == 0
    assert len(consumer.threads) == 1
    last_commit: dict[int, int] = {}
    for committed in consumer.commits:
        last_commit.update(committed)
    assert last_commit == {p: len(rs) for p, rs in records.items()}


def test_a_partition_revoked_while_its_batch_is_applied_is_not_committed(tmp_path: Path) -> None:
    _, records = topic_records()
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    stop = threading.Event()
    consumer = FakeConsumer(engine, records, stop)
    original = Projector._apply_batch_once

    def revoking_first(self: Projector, batch: Any, isolated: bool) -> dict[int, int]:
        # kafka-python rebalances on its own I/O thread: here, while the first batch is applied.
        consumer.owned.discard(TopicPartition(TOPIC, 1))
        return original(self, batch, isolated)

    Projector._apply_batch_once = revoking_first  # type: ignore[method-assign]
    try:
        run_projector(engine, consumer, stop)
    finally:
        Projector._apply_batch_once = original  # type: ignore[method-assign]

    assert consumer.commits and all(1 not in committed for committed in consumer.commits)
    assert len(consumer.threads) == 1
