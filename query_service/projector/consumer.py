"""The projector's consumer loop: order and account events from Kafka applied to the read model.

Per poll: one database transaction holds the batch's rows, the per-stream versions (orders and
accounts tables) and the next offset per partition; Kafka offsets are committed after it. A
transient failure (database, or the command API during a gap repair) rolls the batch back,
rewinds the consumer and retries with backoff: nothing is skipped and no offset moves.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka.errors import KafkaError
from sqlalchemy import Engine

from query_service.projection.events import Event
from query_service.projection.parsing import parse_message
from query_service.projector.applier import ROW_ERRORS, EventApplier
from query_service.projector.batch_report import (
    BatchReport,
    ProjectorObserver,
    applied_lines_wanted,
    log_applied,
)
from query_service.projector.batch_writes import ClaimLost
from query_service.projector.message_apply import TRANSIENT_ERRORS, NeedsIsolation, apply_record
from query_service.projector.positions import (
    AssignmentTracker,
    Batch,
    commit_to_kafka,
    position_from_read_model,
    rewind,
)
from query_service.read_model.event_offsets import EventOffset, record_offsets
from query_service.read_model.order_writer import save_positions
from shared.infra.backoff import Backoff
from shared.infra.db import write_transaction

log = logging.getLogger("query_service.projector")

PROGRESS_LOG_INTERVAL_S = 10.0


@dataclass(frozen=True)
class ProjectorOptions:
    """Tuning of the consumer loop."""

    max_batch: int = 500
    poll_timeout_ms: int = 500
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 10.0
    # One DEBUG line per applied event (with its correlation and trace ids), written when the
    # projector logs at DEBUG; False skips them even then. See docs/metrics.md for the cost.
    log_applied_events: bool = True


@dataclass
class ProjectorStats:
    """Running totals, logged periodically and read by tests."""

    batches: int = 0
    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    retries: int = 0


class Projector:
    """The consumer loop; `run` returns once `stop` is set."""

    def __init__(
        self,
        engine: Engine,
        topic: str,
        consumer_factory: Callable[[], Any],
        applier: EventApplier,
        options: ProjectorOptions | None = None,
        observer: ProjectorObserver | None = None,
    ) -> None:
        self.engine = engine
        self.topic = topic
        self.consumer_factory = consumer_factory
        self.applier = applier
        self.options = options or ProjectorOptions()
        self.observer = observer
        self.stats = ProjectorStats()
        self._tracker = AssignmentTracker()
        self._backoff = Backoff(self.options.initial_backoff_s, self.options.max_backoff_s)
        self._last_progress_log = time.monotonic()

    def run(self, stop: threading.Event) -> None:
        """Consume and apply until stopped."""
        consumer = self._open_consumer(stop)
        if consumer is None:
            return
        try:
            consumer.subscribe([self.topic], listener=self._tracker)
            log.info("projector started", extra={"topic": self.topic})
            while not stop.is_set():
                self._poll_and_apply(consumer, stop)
                self._maybe_log_progress()
        finally:
            consumer.close(autocommit=False)
            log.info("projector stopped", extra={"stats": vars(self.stats)})

    def _open_consumer(self, stop: threading.Event) -> Any:
        while not stop.is_set():
            try:
                return self.consumer_factory()
            except Exception as exc:  # kafka-python raises more than KafkaError here
                log.warning("cannot reach Kafka; retrying", extra={"error": repr(exc)})
                self._backoff.wait(stop)
        return None

    def _poll_and_apply(self, consumer: Any, stop: threading.Event) -> None:
        try:
            batch: Batch = consumer.poll(
                timeout_ms=self.options.poll_timeout_ms, max_records=self.options.max_batch
            )
        except Exception as exc:
            log.warning(
                "Kafka poll failed; retrying",
                extra={"error": repr(exc)},
                exc_info=not isinstance(exc, KafkaError),
            )
            self._backoff.wait(stop)
            return
        try:
            batch = self._position_new_assignments(consumer, batch)
            if not batch:
                return
            next_offsets = self._apply_batch(batch)
        except Exception as exc:
            self._retry_later(consumer, batch, exc, stop)
            return
        self._backoff.reset()
        # Only after the database commit, and only for partitions still ours: kafka-python
        # rebalances on its I/O thread, and a partition revoked while the batch was applied
        # is its new owner's to commit.
        owned = {tp.partition for tp in consumer.assignment() if tp.topic == self.topic}
        mine = {p: offset for p, offset in next_offsets.items() if p in owned}
        if mine:
            commit_to_kafka(consumer, self.topic, mine)

    def _retry_later(
        self, consumer: Any, batch: Batch, exc: Exception, stop: threading.Event
    ) -> None:
        # The transaction rolled back, so retrying the batch is always safe; only a
        # failure that is not a known outage deserves a traceback.
        self.stats.retries += 1
        if self.observer is not None:
            self.observer.batch_retried()
        log.log(
            logging.WARNING if isinstance(exc, TRANSIENT_ERRORS) else logging.ERROR,
            "batch not applied; rewinding to retry",
            extra={"error": repr(exc), "retry_in_s": self._backoff.delay_s},
            exc_info=not isinstance(exc, TRANSIENT_ERRORS),
        )
        rewind(consumer, batch)
        self._backoff.wait(stop)

    def _position_new_assignments(self, consumer: Any, batch: Batch) -> Batch:
        """Seek newly assigned partitions to the stored offsets; drop what was fetched for them."""
        pending = self._tracker.take()
        if not pending:
            return batch
        try:
            moved = position_from_read_model(consumer, self.engine, self.topic, pending)
        except Exception:
            self._tracker.put_back(pending)
            raise
        log.info("positioned partitions from the read model", extra={"next_offsets": moved})
        return {tp: records for tp, records in batch.items() if tp not in pending}

    def _apply_batch(self, batch: Batch) -> dict[int, int]:
        """Apply a batch in one transaction; if a row is rejected, redo it event by event."""
        try:
            return self._apply_batch_once(batch, isolated=False)
        except (*ROW_ERRORS, ClaimLost, NeedsIsolation) as exc:
            log.warning(
                "a message broke its batch; applying the batch event by event to park it",
                extra={"error": repr(exc)},
            )
            return self._apply_batch_once(batch, isolated=True)

    def _apply_batch_once(self, batch: Batch, isolated: bool) -> dict[int, int]:
        started = time.perf_counter()
        gaps_before = self.applier.repairs.gaps
        repaired_before = self.applier.repairs.repaired_events
        next_offsets: dict[int, int] = {}
        counts: Counter[str] = Counter()
        applied: list[tuple[Any, Event]] = []
        with (
            write_transaction(self.engine) as conn,
            self.applier.batch(conn, isolated) as projection,
        ):
            parsed = [(record, _parse(record)) for records in batch.values() for record in records]
            projection.prefetch(event for _, event in parsed if not isinstance(event, Exception))
            offsets: list[EventOffset] = []
            for record, event_or_error in parsed:
                outcome, event = apply_record(projection, record, event_or_error, self.topic)
                counts[outcome] += 1
                if event is not None:
                    applied.append((record, event))
                if outcome != "parked" and not isinstance(event_or_error, Exception):
                    # Duplicates too: an event a gap repair applied gets its message's offset.
                    offsets.append(_offset_of(record, event_or_error))
            record_offsets(conn, offsets)
            for tp, records in batch.items():
                next_offsets[tp.partition] = records[-1].offset + 1
            save_positions(conn, self.topic, next_offsets)
        self.stats.batches += 1
        self.stats.applied += counts["applied"]
        self.stats.duplicates += counts["duplicate"]
        self.stats.parked += counts["parked"]
        # Only now, after the commit: a rolled-back batch is applied (and told) again later.
        if self.options.log_applied_events and applied_lines_wanted():
            for record, event in applied:
                log_applied(record, event)
        if self.observer is not None:
            self.observer.batch_committed(
                BatchReport(
                    applied=[event for _, event in applied],
                    duplicates=counts["duplicate"],
                    parked=counts["parked"],
                    gaps=self.applier.repairs.gaps - gaps_before,
                    repaired=self.applier.repairs.repaired_events - repaired_before,
                    seconds=time.perf_counter() - started,
                )
            )
        return next_offsets

    def _maybe_log_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress_log >= PROGRESS_LOG_INTERVAL_S:
            self._last_progress_log = now
            log.info("projector progress", extra={"stats": vars(self.stats)})


def _offset_of(record: Any, event: Event) -> EventOffset:
    where = (record.topic, record.partition, record.offset)
    return EventOffset(event.stream_id, event.version, event.event_id, *where)


def _parse(record: Any) -> Event | Exception:
    """The message's event, or why it cannot be one (raised again when its turn comes)."""
    try:
        return parse_message(record.value)
    except Exception as exc:
        return exc
