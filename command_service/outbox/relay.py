"""`command-relay`: publish the event log to Kafka in log order (the transactional outbox).

Commands only write SQLite; this separate process reads the log after its last published
position, sends each event keyed by order id, and stores the new position only once the
broker acknowledged it. Delivery is at-least-once: after a crash or a failed batch the
unacknowledged tail is sent again, so consumers deduplicate by event_id or stream version.

A relay sends only while `LeaseHeartbeat.holds_lease()` says its lease is valid, asked before
every read and before every single send: a relay paused past its lease (SIGSTOP, a stalled
VM) stops at its first step after waking up. Records it handed to the producer before the
pause may still reach the broker after it; those are duplicates consumers already skip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from kafka.errors import KafkaError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from command_service.adapters.event_store import EventStore, EventStoreUnavailable
from command_service.outbox.lease import LeaseHeartbeat, LeaseLost, RelayLease
from command_service.outbox.message import send_event
from command_service.outbox.new_event_probe import NewEventProbe
from command_service.outbox.producer_factory import DefaultProducerFactory
from command_service.outbox.publish_span import event_log_ids, publish_span
from shared.contract.envelope import EventEnvelope
from shared.infra.backoff import Backoff
from shared.infra.config import Settings
from shared.infra.db import create_database_engine
from shared.infra.log_context import log_scope_of
from shared.infra.tracing import ProducerSpan, current_tracing

log = logging.getLogger("command_service.relay")

# Slack on top of the producer's own delivery timeout before we stop waiting for a future.
ACK_WAIT_MARGIN_SECONDS = 5.0
# Sleeps are sliced so a signal (which only sets a flag) is noticed quickly.
_SLEEP_SLICE_SECONDS = 0.05

ProducerFactory = Callable[[Settings], Any]


class PublishFailed(Exception):
    """The broker did not acknowledge every event of a batch; `event` is the first it did not."""

    def __init__(self, message: str, event: EventEnvelope) -> None:
        super().__init__(message)
        self.event = event


class LeaseNotHeld(Exception):
    """The lease lapsed or was taken in the middle of a batch: the rest was not sent."""


class RelayObserver(Protocol):
    """Told how publishing goes (the relay's metrics)."""

    def batch_published(self, events: int, seconds: float) -> None:
        """A batch's acknowledged prefix (`events` events) was checkpointed."""

    def publish_failed(self) -> None:
        """An attempt to publish failed; it will be retried."""

    def lease_acquired(self) -> None:
        """This relay took the lease (it did not hold it before): it leads from now on."""


def create_relay_engine(settings: Settings) -> Engine:
    """The relay's connection to the event-log database, with its own SQLite durability."""
    # The relay writes only its checkpoint and lease, and each commit holds the write lock the
    # command service appends under. NORMAL (WAL) commits without an fsync, so that lock is
    # held for microseconds; a commit lost to a power cut costs a re-publish (at least once)
    # or an earlier lease expiry, never an event. OFF, if configured, stays OFF.
    synchronous = "OFF" if settings.sqlite_synchronous == "OFF" else "NORMAL"
    return create_database_engine(settings.event_store_url, synchronous)


class Relay:
    """Waits for the lease, then publishes the log to Kafka while it holds it, until stopped."""

    def __init__(
        self,
        settings: Settings,
        store: EventStore,
        lease: RelayLease,
        producer_factory: ProducerFactory | None = None,
        observer: RelayObserver | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.lease = lease
        self.producer_factory = producer_factory or DefaultProducerFactory()
        self.observer = observer
        self.stopping = False
        self._producer: Any = None
        self._log = {"topic": settings.kafka_topic, "owner": lease.owner}

    def stop(self) -> None:
        """Ask the relay to finish its in-flight batch, release the lease and return from run()."""
        self.stopping = True

    def run(self) -> None:
        """The relay's whole life: alternate between waiting for the lease and leading."""
        heartbeat = LeaseHeartbeat(self.lease, self.settings.relay_lease_seconds / 3)
        waiting_logged = False
        while not self.stopping:
            asked_at = time.monotonic()
            try:
                acquired = self.lease.try_acquire()
            except SQLAlchemyError:
                log.exception("could not reach the lease table", extra=self._log)
                acquired = False
            if not acquired:
                if not waiting_logged:
                    log.info("waiting for the relay lease", extra=self._log)
                    waiting_logged = True
                self._sleep(min(1.0, self.settings.relay_lease_seconds / 4))
                continue
            waiting_logged = False
            log.info("acquired the relay lease", extra=self._log)
            if self.observer is not None:
                self.observer.lease_acquired()
            heartbeat.start(acquired_at=asked_at)
            try:
                self._lead(heartbeat)
            finally:
                still_held = heartbeat.holds_lease()
                heartbeat.stop()
                # Not ours any more: drop what the producer still queues rather than send it.
                self._close_producer(timeout=5 if still_held else 0)
            if not still_held:
                reason = "taken by another relay" if heartbeat.lost.is_set() else "expired"
                log.warning(
                    "lost the relay lease; waiting again", extra={**self._log, "lease": reason}
                )
        log.info("stop requested", extra=self._log)
        self._release()

    def _lead(self, heartbeat: LeaseHeartbeat) -> None:
        """Publish batches while we hold the lease; back off on broker or database failures."""
        probe = NewEventProbe(self.store.engine)
        try:
            self._publish_while_held(heartbeat, probe)
        finally:
            probe.close()

    def _publish_while_held(self, heartbeat: LeaseHeartbeat, probe: NewEventProbe) -> None:
        backoff = Backoff()
        position: int | None = None
        while not self.stopping and heartbeat.holds_lease():
            try:
                if position is None:
                    position = self.lease.published_position()
                    log.info("publishing", extra={**self._log, "after_position": position})
                if self._producer is None:
                    self._producer = self.producer_factory(self.settings)
                events = self.store.read_all(position, self.settings.relay_batch_size)
                if not events:
                    self._wait_for_new_events(probe, position, heartbeat)
                    continue
                # No pause after a batch: under load the next events are already committed.
                position = self._publish_and_checkpoint(events, position, heartbeat)
                if backoff.failures:
                    log.info("publishing again", extra={**self._log, "position": position})
                    backoff.reset()
            except LeaseLost:
                heartbeat.lost.set()
            except LeaseNotHeld:
                return
            except (KafkaError, PublishFailed, OSError) as exc:
                if self.observer is not None:
                    self.observer.publish_failed()
                self._close_producer(timeout=0)
                position = None  # resume from the stored checkpoint: it may have moved
                self._sleep_after_failure(backoff, "Kafka", exc)
            except (EventStoreUnavailable, SQLAlchemyError) as exc:
                self._sleep_after_failure(backoff, "event store", exc)

    def _wait_for_new_events(
        self, probe: NewEventProbe, position: int, heartbeat: LeaseHeartbeat
    ) -> None:
        """Sleep in poll intervals until the log grows past `position` (or we must stop)."""
        interval = self.settings.relay_poll_interval_ms / 1000
        while not self.stopping and heartbeat.holds_lease():
            self._sleep(interval)
            if probe.grew_past(position):
                return

    def _publish_and_checkpoint(
        self, events: Sequence[EventEnvelope], position: int, heartbeat: LeaseHeartbeat
    ) -> int:
        """Publish a batch and store how far the broker acknowledged it; the new position."""
        started = time.perf_counter()
        acked, failure = self._publish(events, position, heartbeat)
        if acked > position:
            self.lease.store_position(acked)
            if self.observer is not None:
                published = sum(1 for e in events if e.position <= acked)
                self.observer.batch_published(published, time.perf_counter() - started)
            log.debug("published", extra={**self._log, "count": len(events), "position": acked})
        if isinstance(failure, LeaseNotHeld):
            raise failure
        if failure is not None:
            first = next(e for e in events if e.position > acked)
            raise PublishFailed(
                f"event at position {first.position} (correlation_id "
                f"{first.metadata.get('correlation_id')}) not acknowledged: {failure!r}",
                first,
            ) from failure
        return acked

    def _publish(
        self, events: Sequence[EventEnvelope], position: int, heartbeat: LeaseHeartbeat
    ) -> tuple[int, BaseException | None]:
        """Send a batch; the last position of its acknowledged prefix, and the first error."""
        producer = self._producer
        topic = self.settings.kafka_topic
        source = self.settings.cloudevents_source
        tracing = current_tracing()
        futures: list[Any] = []
        spans: list[ProducerSpan] = []
        failure: BaseException | None = None
        try:
            for event in events:
                # Per event, not per batch: a pause in the middle of a batch ends it too.
                if not heartbeat.holds_lease():
                    failure = LeaseNotHeld(f"lease not held at position {event.position}")
                    break
                if tracing.recording:
                    spans.append(publish_span(tracing, topic, event))
                    sent = spans[-1].traceparent
                    traceparent = sent.header() if sent is not None else None
                    futures.append(send_event(producer, topic, event, source, traceparent))
                else:
                    futures.append(send_event(producer, topic, event, source))
        except KafkaError as exc:
            failure = exc  # still wait for what was sent: its prefix can be checkpointed
        delivery_timeout = self.settings.kafka_delivery_timeout_ms / 1000
        deadline = time.monotonic() + delivery_timeout + ACK_WAIT_MARGIN_SECONDS
        acked = position
        for index, (event, future) in enumerate(zip(events, futures, strict=False)):
            try:
                future.get(timeout=max(0.0, deadline - time.monotonic()))
            except KafkaError as exc:
                for span in spans[index:]:
                    span.end(exc)
                return acked, exc
            if spans:
                spans[index].end()
            acked = event.position
        for span in spans[len(futures) :]:  # started, but its send raised
            span.end(failure)
        return acked, failure

    def _sleep_after_failure(self, backoff: Backoff, what: str, exc: BaseException) -> None:
        delay = backoff.next_delay()
        # The event that was not acknowledged, if one was, is what the line is about.
        scope = event_log_ids(exc.event) if isinstance(exc, PublishFailed) else None
        with log_scope_of(scope):
            log.warning(
                f"{what} unavailable; retrying",
                extra={**self._log, "error": repr(exc), "retry_in_s": round(delay, 3)},
            )
        self._sleep(delay)

    def _close_producer(self, timeout: float) -> None:
        # timeout=0 aborts queued records, so nothing from a failed batch is sent after the
        # records we are about to send again; that keeps each key's first copies in order.
        if self._producer is not None:
            try:
                self._producer.close(timeout=timeout)
            except Exception:
                log.exception("closing the producer failed", extra=self._log)
            self._producer = None

    def _release(self) -> None:
        try:
            self.lease.release()
            log.info("released the relay lease", extra=self._log)
        except SQLAlchemyError:
            log.exception("could not release the lease; it will expire", extra=self._log)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, _SLEEP_SLICE_SECONDS))
