"""Re-publishing a range of log positions to Kafka, message for message as the relay sends them.

For repairing a topic (recreated, trimmed by retention, a consumer that must re-read).
Safe while the relay runs: each copy has the same key, so it lands on its order's partition
after the first copy, and consumers skip an event at or below the version they applied. The
relay's published position is not touched: its checkpoint still says what *it* delivered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from kafka.errors import KafkaError

from command_service.adapters.event_store import EventStore
from command_service.outbox.message import send_event
from command_service.outbox.relay import ACK_WAIT_MARGIN_SECONDS
from shared.contract.envelope import EventEnvelope
from shared.infra.progress import ProgressBar

PAGE_SIZE = 500


class InvalidRange(ValueError):
    """The positions asked for are not a non-empty range inside the log."""


class RepublishFailed(Exception):
    """The broker did not acknowledge the event at `position`; all before it were."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position


def check_range(first: int, last: int, head: int) -> None:
    """Raise InvalidRange unless 1 <= first <= last <= head."""
    if first < 1:
        raise InvalidRange(f"positions start at 1, got --from {first}")
    if first > last:
        raise InvalidRange(f"--from {first} is after --to {last}")
    if last > head:
        raise InvalidRange(f"--to {last} is beyond the head of the log ({head})")


def republish_range(
    store: EventStore,
    producer: Any,
    topic: str,
    source: str,
    first: int,
    last: int,
    ack_timeout_s: float,
    progress: ProgressBar | None = None,
) -> int:
    """Send the events at positions first..last and wait for every ack; how many were sent."""
    sent = 0
    after = first - 1
    while after < last:
        # Positions are gapless, so this page never reaches past `last`.
        events = store.read_all(after, min(PAGE_SIZE, last - after))
        if not events:
            break
        _send_and_wait(producer, topic, source, events, ack_timeout_s)
        sent += len(events)
        after = events[-1].position
        if progress is not None:
            progress.advance(len(events))
    return sent


def _send_and_wait(
    producer: Any,
    topic: str,
    source: str,
    events: Sequence[EventEnvelope],
    ack_timeout_s: float,
) -> None:
    deadline = time.monotonic() + ack_timeout_s + ACK_WAIT_MARGIN_SECONDS
    try:
        # The relay's own message builder, so a copy is indistinguishable from the original.
        futures = [send_event(producer, topic, event, source) for event in events]
    except KafkaError as exc:
        first = events[0].position
        raise RepublishFailed(first, f"sending from position {first} failed: {exc!r}") from exc
    for event, future in zip(events, futures, strict=True):
        try:
            future.get(timeout=max(0.0, deadline - time.monotonic()))
        except KafkaError as exc:
            message = f"the event at position {event.position} was not acknowledged: {exc!r}"
            raise RepublishFailed(event.position, message) from exc
