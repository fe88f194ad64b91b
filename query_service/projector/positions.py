"""Keeping the consumer's positions in line with the read model, the source of truth for progress.

On every assignment the consumer is moved to the offsets stored with the read model; Kafka's
committed offsets only decide where a fetch starts before that, and records fetched from
there are dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import ConsumerRebalanceListener, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from sqlalchemy import Engine

from query_service.read_model.order_writer import load_positions

log = logging.getLogger("query_service.partition_positions")

Batch = dict[TopicPartition, list[Any]]


class AssignmentTracker(ConsumerRebalanceListener):  # type: ignore[misc]
    """Remembers newly assigned partitions; the consumer loop positions them from the database.

    kafka-python runs these callbacks on its I/O thread, where blocking (a database read)
    would delay heartbeats, so they only record what changed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unpositioned: set[TopicPartition] = set()

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        with self._lock:
            self._unpositioned.difference_update(revoked)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        with self._lock:
            self._unpositioned.update(assigned)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.on_partitions_revoked(lost)

    def take(self) -> set[TopicPartition]:
        """The partitions assigned since the last call."""
        with self._lock:
            taken, self._unpositioned = self._unpositioned, set()
            return taken

    def put_back(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions that could not be positioned: try again on the next call."""
        with self._lock:
            self._unpositioned.update(partitions)


def position_from_read_model(
    consumer: Any, engine: Engine, topic: str, partitions: set[TopicPartition]
) -> dict[int, int | None]:
    """Seek each still-assigned partition to its stored offset, or its beginning if none."""
    with engine.connect() as conn:
        stored = load_positions(conn, topic)
    moved: dict[int, int | None] = {}
    for tp in sorted(partitions):
        offset = stored.get(tp.partition)
        if _seek(consumer, tp, offset):
            moved[tp.partition] = offset
    return moved


def rewind(consumer: Any, batch: Batch) -> None:
    """Move the consumer back to the first record of the batch on each partition it still owns."""
    for tp, records in batch.items():
        if records:
            _seek(consumer, tp, records[0].offset)


def _seek(consumer: Any, tp: TopicPartition, offset: int | None) -> bool:
    """Seek to an offset (None: the beginning) unless the partition is no longer ours."""
    # The group rebalances on kafka-python's I/O thread, so a partition can be revoked between
    # any two lines here; its next owner positions it from the read model itself.
    if tp not in consumer.assignment():
        return False
    try:
        if offset is None:
            consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
    except (ValueError, KafkaError):
        return False
    return True


def commit_to_kafka(consumer: Any, topic: str, next_offsets: Mapping[int, int]) -> None:
    """Commit the offsets Kafka-side too: a convenience for tools, so a failure is only logged."""
    offsets = {
        TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
        for partition, offset in next_offsets.items()
    }
    try:
        consumer.commit(offsets)
    except KafkaError as exc:
        log.info("Kafka offset commit failed (the read model has them)", extra={"error": repr(exc)})
