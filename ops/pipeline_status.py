"""Where each stage of the pipeline is: log head, relay checkpoint, topic ends, projector offsets.

Read-only, for operators: a database that does not exist yet is reported as missing, never
created, and Kafka is asked with a hard deadline, so a dead broker is reported, not waited on.
This is the one place besides the admin console that reads both services' stores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from command_service.adapters.event_store import EventStore, events_table
from command_service.outbox.lease import LeaseHolder, RelayLease, relay_state_table
from query_service.projector.lag import kafka_end_offsets
from query_service.read_model.tables import (
    create_read_model_engine,
    parked_events,
    projector_positions,
)
from shared.contract.envelope import format_timestamp
from shared.infra.config import Settings
from shared.infra.db import create_database_engine

KAFKA_TIMEOUT_S = 3.0
# Only reads through the lease object; an observer never tries to acquire it.
OBSERVER_OWNER = "orders-admin-observer"

StoreState = Literal["ok", "missing", "error"]


@dataclass(frozen=True)
class EventLogStatus:
    """The event log's newest position (None unless the log could be read)."""

    url: str
    state: StoreState
    head_position: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class RelayStatus:
    """The relay's published position for the topic, its lag behind the head, and its lease."""

    topic: str
    published_position: int | None = None
    lag: int | None = None
    lease_owner: str | None = None
    lease_expires_at: str | None = None
    lease_active: bool = False


@dataclass(frozen=True)
class PartitionEnd:
    """The offset the next message on one partition will get."""

    partition: int
    end_offset: int


@dataclass(frozen=True)
class KafkaStatus:
    """The topic's end offsets, or why Kafka could not tell them."""

    bootstrap_servers: str
    topic: str
    reachable: bool
    topic_exists: bool | None = None
    end_offsets: list[PartitionEnd] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class PartitionLag:
    """One partition as the projector sees it: its stored next offset, the end, the gap."""

    partition: int
    next_offset: int | None
    updated_at: str | None
    end_offset: int | None
    lag: int | None


@dataclass(frozen=True)
class ProjectorStatus:
    """The read model's stored positions, the lag per partition and the parked events."""

    read_model_url: str
    state: StoreState
    partitions: list[PartitionLag] = field(default_factory=list)
    total_lag: int | None = None
    parked_events: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class PipelineStatus:
    """Every stage, each read in turn (not one atomic snapshot)."""

    event_log: EventLogStatus
    relay: RelayStatus
    kafka: KafkaStatus
    projector: ProjectorStatus

    def as_json_dict(self) -> dict[str, Any]:
        """Plain JSON types, for `orders-admin status --json`."""
        return asdict(self)


def read_pipeline_status(
    settings: Settings, kafka_timeout_s: float = KAFKA_TIMEOUT_S
) -> PipelineStatus:
    """Read every stage; failures become part of the report instead of exceptions."""
    # Each follower is read before what it follows (relay before log head, projector before
    # the topic's ends): both only grow, so a lag can overstate by what moved meanwhile but
    # is never negative.
    event_log, relay = read_event_log_status(settings)
    projector = _read_projector_positions(settings)
    kafka, end_offsets = _read_kafka_status(settings, kafka_timeout_s)
    return PipelineStatus(event_log, relay, kafka, _with_lag(projector, end_offsets))


def read_event_log_status(settings: Settings) -> tuple[EventLogStatus, RelayStatus]:
    """The log head and the relay's checkpoint and lease, both from the event-log database."""
    url = settings.event_store_url
    shown = display_url(url)
    topic = settings.kafka_topic
    if sqlite_file_missing(url):
        return EventLogStatus(shown, "missing"), RelayStatus(topic)
    engine = create_database_engine(url, settings.sqlite_synchronous)
    try:
        tables = set(inspect(engine).get_table_names())
        if events_table.name not in tables:
            return EventLogStatus(shown, "missing"), RelayStatus(topic)
        published, holder = 0, LeaseHolder(None, None)  # no relay ever ran against this log
        if relay_state_table.name in tables:
            view = RelayLease(engine, topic, OBSERVER_OWNER, ttl_seconds=1)
            published, holder = view.published_position(), view.holder()
        head = EventStore(engine).head_position()
    except SQLAlchemyError as exc:
        return EventLogStatus(shown, "error", error=_describe(exc)), RelayStatus(topic)
    finally:
        engine.dispose()
    expires = holder.expires_at
    relay = RelayStatus(
        topic,
        published,
        head - published,
        holder.owner,
        format_timestamp(expires) if expires is not None else None,
        holder.owner is not None and expires is not None and expires > datetime.now(UTC),
    )
    return EventLogStatus(shown, "ok", head), relay


def _read_kafka_status(
    settings: Settings, timeout_s: float
) -> tuple[KafkaStatus, dict[int, int] | None]:
    servers, topic = settings.kafka_bootstrap_servers, settings.kafka_topic
    try:
        end_offsets = kafka_end_offsets(settings, timeout_s)
    except Exception as exc:  # any failure of the broker is something to report, not raise
        return KafkaStatus(servers, topic, reachable=False, error=_describe(exc)), None
    ends = [PartitionEnd(p, o) for p, o in sorted(end_offsets.items())]
    # The probe answers {} for a topic the broker does not know.
    return KafkaStatus(servers, topic, True, bool(end_offsets), ends), end_offsets


def _read_projector_positions(settings: Settings) -> ProjectorStatus:
    """The stored next offsets and the parked count; end offsets and lag not filled in yet."""
    url = settings.read_model_url
    shown = display_url(url)
    if sqlite_file_missing(url):
        return ProjectorStatus(shown, "missing")
    engine = create_read_model_engine(url)
    table = projector_positions
    try:
        if not inspect(engine).has_table(table.name):
            return ProjectorStatus(shown, "missing")
        with engine.connect() as conn:
            stored = conn.execute(
                select(table.c.kafka_partition, table.c.next_offset, table.c.updated_at)
                .where(table.c.topic == settings.kafka_topic)
                .order_by(table.c.kafka_partition)
            ).all()
            parked = int(conn.scalar(select(func.count()).select_from(parked_events)) or 0)
    except SQLAlchemyError as exc:
        return ProjectorStatus(shown, "error", error=_describe(exc))
    finally:
        engine.dispose()
    rows = [
        PartitionLag(int(p), int(offset), format_timestamp(at), None, None)
        for p, offset, at in stored
    ]
    return ProjectorStatus(shown, "ok", rows, parked_events=parked)


def _with_lag(projector: ProjectorStatus, end_offsets: dict[int, int] | None) -> ProjectorStatus:
    """Add each partition's end offset and lag, and their total (None where Kafka is unknown)."""
    if projector.state != "ok":
        return projector
    stored = {row.partition: row for row in projector.partitions}
    rows = []
    for partition in sorted(set(stored) | set(end_offsets or {})):
        row = stored.get(partition, PartitionLag(partition, None, None, None, None))
        end = end_offsets.get(partition) if end_offsets is not None else None
        # A partition without a stored offset is read from its beginning, as the projector does.
        lag = None if end is None else max(end - (row.next_offset or 0), 0)
        rows.append(replace(row, end_offset=end, lag=lag))
    lags = [row.lag for row in rows]
    total = sum(lag for lag in lags if lag is not None) if None not in lags else None
    return replace(projector, partitions=rows, total_lag=total)


def sqlite_file_missing(url: str) -> bool:
    """True for a SQLite URL whose file does not exist: opening it would create it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return False
    return not Path(database).exists()


def display_url(url: str) -> str:
    """The URL as an operator may see it: any password masked."""
    return make_url(url).render_as_string(hide_password=True)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    # Kafka's errors already start with their class name.
    named = text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"
    return named.splitlines()[0]
