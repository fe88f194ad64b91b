"""`query-projector`: run the projector (see projector.py) until SIGTERM or SIGINT.

Settings come from the environment (shared/infra/config.py): READ_MODEL_URL,
KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, KAFKA_GROUP_ID, COMMAND_API_URL (gap repair),
PROJECTOR_SESSION_TIMEOUT_MS, LOG_LEVEL.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from sqlalchemy import Engine

from query_service.projector.applier import EventApplier
from query_service.projector.batch_report import ProjectorObserver
from query_service.projector.command_api import CommandApiClient
from query_service.projector.consumer import Projector, ProjectorOptions
from query_service.projector.message_trace import outgoing_trace_headers
from query_service.read_model.tables import create_read_model_engine, create_read_model_schema
from shared.contract.principal import EVENTS_READ
from shared.infra.auth_setup import service_token
from shared.infra.config import Settings
from shared.infra.kafka import create_consumer, ensure_topic
from shared.infra.metrics_dir import claim_metrics_dir
from shared.infra.schema_startup import create_schema_when_reachable
from shared.infra.structured_logging import configure_logging
from shared.infra.tracing import configure_tracing


class TopicNotReady(RuntimeError):
    """The topic exists but this client has no partition metadata for it yet; retry."""


def build_projector(
    settings: Settings,
    engine: Engine,
    options: ProjectorOptions,
    observer: ProjectorObserver | None = None,
    **consumer_overrides: Any,
) -> Projector:
    """A projector reading settings.kafka_topic in group settings.kafka_group_id."""

    def open_consumer() -> Any:
        ensure_topic(
            settings,
            settings.kafka_topic,
            settings.kafka_topic_partitions,
            settings.kafka_replication_factor,
        )
        consumer = create_consumer(
            settings,
            group_id=settings.kafka_group_id,
            client_id="query-projector",
            max_poll_records=options.max_batch,
            allow_auto_create_topics=False,
            **consumer_overrides,
        )
        # A group leader that joins before it has the topic's partitions assigns nothing to
        # anyone, and kafka-python only notices at its next metadata refresh (minutes later).
        if not consumer.partitions_for_topic(settings.kafka_topic):
            consumer.close(autocommit=False)
            raise TopicNotReady(f"no partition metadata yet for topic {settings.kafka_topic!r}")
        return consumer

    token = service_token(settings, "query-projector", [EVENTS_READ])
    gap_source = CommandApiClient(
        settings.command_api_url, token=token, context_headers=outgoing_trace_headers
    )
    applier = EventApplier(gap_source)
    return Projector(engine, settings.kafka_topic, open_consumer, applier, options, observer)


def group_timeouts(session_timeout_ms: int) -> dict[str, int]:
    """Consumer options for a group session of this length, heartbeating three times in it."""
    return {
        "session_timeout_ms": session_timeout_ms,
        "heartbeat_interval_ms": max(session_timeout_ms // 3, 100),
    }


def main(argv: list[str] | None = None) -> None:
    """Console script entry point; SIGTERM or SIGINT stops it after the current batch."""
    parser = argparse.ArgumentParser(prog="query-projector", description=__doc__)
    parser.add_argument("--max-batch", type=int, default=ProjectorOptions.max_batch)
    parser.add_argument(
        "--session-timeout-ms",
        type=int,
        default=None,
        help="Kafka group session timeout (how soon a crashed projector's partitions move); "
        "default PROJECTOR_SESSION_TIMEOUT_MS (10000)",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing(settings, "query-projector")
    claim_metrics_dir(settings.metrics_dir / "query", "projector")
    # Imported once the directory is claimed: prometheus_client picks its storage on import.
    from query_service.http.metrics import ProjectorMetrics

    engine = create_read_model_engine(settings.read_model_url)
    session_timeout_ms = args.session_timeout_ms or settings.projector_session_timeout_ms
    overrides = group_timeouts(session_timeout_ms)
    options = ProjectorOptions(
        max_batch=args.max_batch, log_applied_events=settings.projector_log_events
    )
    projector = build_projector(settings, engine, options, ProjectorMetrics(), **overrides)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        if create_schema_when_reachable(
            lambda: create_read_model_schema(engine), stop.is_set, stop.wait
        ):
            projector.run(stop)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
