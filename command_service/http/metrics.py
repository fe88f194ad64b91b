"""The command side's Prometheus metrics, defined once: commands, appends, the relay's publishing,
and the log and relay positions read from the event-log database at scrape time.

The API's gunicorn workers and the relay write their samples under one root (see
shared/infra/metrics_dir.py), so the command API's GET /metrics shows both.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter as Tally
from collections.abc import Iterator, Sequence

from flask import Flask
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from command_service.adapters.event_store import EventStore
from command_service.outbox.lease import metadata as relay_metadata
from command_service.outbox.lease import relay_state_table
from shared.contract.envelope import EventEnvelope
from shared.http.metrics import UNMATCHED_ENDPOINT, ServedRequest, install_http_metrics
from shared.http.metrics_endpoint import install_metrics_endpoint
from shared.infra.config import Settings
from shared.infra.db import create_tables

log = logging.getLogger("command_service.metrics")

COMMAND_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

COMMANDS = Counter(
    "commands_total",
    "Commands answered, by command and outcome (ok, replayed, rejected = 4xx, error = 5xx) "
    "and status code.",
    ["command", "outcome", "status"],
)
COMMAND_DURATION = Histogram(
    "command_duration_seconds",
    "Time to answer a command, whatever the outcome.",
    ["command"],
)
EVENTS_APPENDED = Counter(
    "events_appended_total",
    "Events committed to the event log by this API, by event type.",
    ["type"],
)
APPEND_BATCH_SIZE = Histogram(
    "event_store_append_batch_size",
    "Appends written in one transaction by group commit, per transaction (this API's workers).",
    buckets=(1, 2, 3, 4, 6, 8, 16, 32, 64),
)
RELAY_PUBLISHED = Counter(
    "relay_published_events_total",
    "Events the broker acknowledged and the relay checkpointed.",
)
RELAY_PUBLISH_ERRORS = Counter(
    "relay_publish_errors_total",
    "Publish attempts that failed (a batch not fully acknowledged, or no producer), each retried.",
)
# Every time a relay takes the lease: the owner label of relay_lease_expires_timestamp_seconds
# shows who holds it now, but not a handover back and forth between two relays.
RELAY_LEASE_ACQUISITIONS = Counter(
    "relay_lease_acquisitions_total",
    "Times a relay took the lease of its topic (after waiting for it or losing it).",
    ["topic"],
)
RELAY_BATCH_DURATION = Histogram(
    "relay_batch_duration_seconds",
    "Time to publish one batch and store its checkpoint.",
)


# Labelled children looked up once per label set (bounded: commands, outcomes, statuses, event
# types); labels() validates and locks on every call.
@functools.cache
def _command_series(endpoint: str, outcome: str, status: int) -> tuple[Counter, Histogram]:
    command = endpoint.rsplit(".", 1)[-1]
    return COMMANDS.labels(command, outcome, str(status)), COMMAND_DURATION.labels(command)


@functools.cache
def _appended_series(event_type: str) -> Counter:
    return EVENTS_APPENDED.labels(event_type)


def command_outcome(served: ServedRequest) -> str:
    """ok, replayed (an Idempotency-Key or same-body retry answered again), rejected or error."""
    if served.status >= 500:
        return "error"
    if served.status >= 400:
        return "rejected"
    return "replayed" if served.response.headers.get("Idempotent-Replayed") == "true" else "ok"


def record_command(served: ServedRequest) -> None:
    """Count and time a request as a command if it is one: a write that matched a route."""
    if served.method in COMMAND_METHODS and served.endpoint != UNMATCHED_ENDPOINT:
        count, duration = _command_series(served.endpoint, command_outcome(served), served.status)
        count.inc()
        duration.observe(served.seconds)


def record_appended(events: Sequence[EventEnvelope]) -> None:
    """Count committed events by type (EventStore calls it after each commit)."""
    if len(events) == 1:  # most commands
        _appended_series(events[0].type).inc()
        return
    for event_type, count in Tally(e.type for e in events).items():
        _appended_series(event_type).inc(count)


class RelayMetrics:
    """The relay's observer (see outbox/relay.py): publishing outcomes as metrics."""

    def __init__(self, topic: str) -> None:
        self.acquisitions = RELAY_LEASE_ACQUISITIONS.labels(topic)

    def batch_published(self, events: int, seconds: float) -> None:
        RELAY_PUBLISHED.inc(events)
        RELAY_BATCH_DURATION.observe(seconds)

    def publish_failed(self) -> None:
        RELAY_PUBLISH_ERRORS.inc()

    def lease_acquired(self) -> None:
        self.acquisitions.inc()


class EventLogPositions:
    """Scrape-time gauges: the log's head, and per topic the relay's checkpoint and its lag."""

    def __init__(self, store: EventStore, topic: str) -> None:
        self.store = store
        self.topic = topic

    def collect(self) -> Iterator[Metric]:
        try:
            head = self.store.head_position()
            with self.store.engine.connect() as conn:
                rows = list(
                    conn.execute(
                        select(
                            relay_state_table.c.topic,
                            relay_state_table.c.published_position,
                            relay_state_table.c.lease_owner,
                            relay_state_table.c.lease_expires_at,
                        )
                    )
                )
                published = {str(row.topic): int(row.published_position) for row in rows}
        except SQLAlchemyError as exc:
            log.warning("event log unreadable for metrics", extra={"error": repr(exc)})
            yield GaugeMetricFamily("event_log_up", "1 if the event log could be read.", 0)
            return
        # Every topic a relay publishes to (the relays may be configured apart from this API),
        # and ours even before any relay ran: then all of the log is lag.
        published.setdefault(self.topic, 0)
        yield GaugeMetricFamily("event_log_up", "1 if the event log could be read.", 1)
        yield GaugeMetricFamily(
            "event_log_head_position", "Position of the newest event in the log.", head
        )
        position = GaugeMetricFamily(
            "relay_published_position",
            "Last log position the relay published and checkpointed, per topic.",
            labels=["topic"],
        )
        lag = GaugeMetricFamily(
            "relay_lag_events", "Events in the log not yet published, per topic.", labels=["topic"]
        )
        for topic, value in sorted(published.items()):
            position.add_metric([topic], value)
            lag.add_metric([topic], max(head - value, 0))
        yield position
        yield lag
        # Who holds each topic's relay lease (operators, the console): the owner as a label.
        lease = GaugeMetricFamily(
            "relay_lease_expires_timestamp_seconds",
            "When the relay lease of a topic expires (Unix time), labelled with its holder.",
            labels=["topic", "owner"],
        )
        for row in rows:
            if row.lease_owner is not None and row.lease_expires_at is not None:
                expires = row.lease_expires_at.timestamp()
                lease.add_metric([str(row.topic), str(row.lease_owner)], expires)
        yield lease


def install_command_metrics(
    app: Flask, store: EventStore, settings: Settings, readiness: Collector
) -> None:
    """Time requests, count commands and `store`'s appends, serve GET /metrics (command side)."""
    store.on_appended = record_appended
    store.group_commit.on_batch = APPEND_BATCH_SIZE.observe
    # So the relay's checkpoints read as none before any relay ran, rather than failing.
    create_tables(store.engine, relay_metadata)
    install_http_metrics(app, record_command)
    install_metrics_endpoint(
        app,
        settings.metrics_dir / "command",
        [readiness, EventLogPositions(store, settings.kafka_topic)],
    )
