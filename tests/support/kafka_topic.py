"""Reading a whole Kafka topic back, to compare it with the event log."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field

from kafka import KafkaConsumer, TopicPartition

from tests.support.processes import wait_until


@dataclass
class TopicContents:
    """The whole topic: message count, distinct event ids, and per-key order violations."""

    messages: int = 0
    event_ids: set[str] = field(default_factory=set)
    # A message whose version skips past the next one its key expects: a reorder or a hole.
    skipped_ahead: list[str] = field(default_factory=list)
    # Log positions of the messages that repeat an event already on the topic.
    duplicate_positions: list[int] = field(default_factory=list)

    def describe_duplicates(self) -> str:
        """E.g. "12 duplicate messages, log positions 143-150, 201-204"."""
        if not self.duplicate_positions:
            return ""
        ranges: list[list[int]] = []
        for position in sorted(set(self.duplicate_positions)):
            if ranges and position == ranges[-1][1] + 1:
                ranges[-1][1] = position
            else:
                ranges.append([position, position])
        shown = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges[:6])
        more = f" and {len(ranges) - 6} more ranges" if len(ranges) > 6 else ""
        return f"{len(self.duplicate_positions)} duplicate messages, log positions {shown}{more}"


def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> TopicContents:
    """Consume every partition of `topic` from the beginning to its current end."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","), enable_auto_commit=False, group_id=None
    )
    try:
        numbers = wait_until(lambda: consumer.partitions_for_topic(topic), 30, "no partitions")
        partitions = [TopicPartition(topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        contents = TopicContents()
        highest: dict[str, int] = defaultdict(int)  # key -> highest version seen
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
                for record in records:
                    contents.messages += 1
                    value = json.loads(record.value)
                    if value["event_id"] in contents.event_ids:
                        contents.duplicate_positions.append(value["position"])
                    contents.event_ids.add(value["event_id"])
                    key, version = value["stream_id"], value["version"]
                    if version > highest[key] + 1:
                        contents.skipped_ahead.append(
                            f"{key} v{version} after v{highest[key]} "
                            f"(partition {record.partition} offset {record.offset})"
                        )
                    highest[key] = max(highest[key], version)
        return contents
    finally:
        consumer.close()
