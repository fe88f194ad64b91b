"""Kafka clients built from Settings, with timeouts that keep a dead broker from hanging us.

The relay publishes with the producer; the query side's projector consumes with the consumer.
Every blocking call is bounded: a client whose broker is gone fails within seconds and the
caller decides whether to retry, instead of waiting on kafka-python's minute-long defaults.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import TopicAlreadyExistsError

from shared.infra.config import Settings

log = logging.getLogger("shared.kafka")

# Bounds on blocking. The producer keeps retrying a record until Settings.
# kafka_delivery_timeout_ms, so a broker that restarts within it costs only latency.
REQUEST_TIMEOUT_MS = 5_000
MAX_BLOCK_MS = 5_000
BOOTSTRAP_TIMEOUT_MS = 5_000
# kafka-python's default reconnect backoff grows to 30 s; a returning broker should be
# noticed within about a second.
RECONNECT_BACKOFF_MAX_MS = 1_000
TOPIC_READY_TIMEOUT_MS = 10_000


def _connection_options(settings: Settings) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers.split(","),
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }


def create_producer(settings: Settings, client_id: str = "order-relay", **overrides: Any) -> Any:
    """An idempotent, acks=all KafkaProducer that keeps per-partition order across retries."""
    delivery_timeout_ms = settings.kafka_delivery_timeout_ms
    options: dict[str, Any] = {
        **_connection_options(settings),
        # kafka-python insists on request timeout + linger <= delivery timeout.
        "request_timeout_ms": min(REQUEST_TIMEOUT_MS, delivery_timeout_ms),
        "client_id": client_id,
        "acks": "all",
        # Explicit, so a conflicting option raises instead of silently dropping idempotence.
        "enable_idempotence": True,
        # The most an idempotent producer allows while still guaranteeing order.
        "max_in_flight_requests_per_connection": 5,
        "delivery_timeout_ms": delivery_timeout_ms,
        "max_block_ms": MAX_BLOCK_MS,
        "linger_ms": 0,
        "batch_size": 128 * 1024,
        "allow_auto_create_topics": False,
    }
    options.update(overrides)
    return KafkaProducer(**options)


def create_consumer(
    settings: Settings, *topics: str, group_id: str | None = None, **overrides: Any
) -> Any:
    """A KafkaConsumer that starts from the earliest offset and leaves commits to the caller."""
    options: dict[str, Any] = {
        **_connection_options(settings),
        # A reader asking about a topic that does not exist yet must not create it with the
        # broker's default single partition.
        "allow_auto_create_topics": False,
        "group_id": group_id,
        "auto_offset_reset": "earliest",
        "enable_auto_commit": False,
    }
    options.update(overrides)
    return KafkaConsumer(*topics, **options)


def create_admin(settings: Settings, client_id: str = "orders-admin") -> Any:
    """A KafkaAdminClient for topic management."""
    return KafkaAdminClient(client_id=client_id, **_connection_options(settings))


def ensure_topic(admin_or_bootstrap: Any, name: str, partitions: int, replication: int) -> bool:
    """Create a topic if it is missing and wait until it has leaders; True if it was created.

    Accepts a KafkaAdminClient or a bootstrap servers string (a client is opened and closed).
    """
    if isinstance(admin_or_bootstrap, str):
        admin = KafkaAdminClient(
            bootstrap_servers=admin_or_bootstrap.split(","),
            client_id="orders-admin",
            request_timeout_ms=REQUEST_TIMEOUT_MS,
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        )
        try:
            return ensure_topic(admin, name, partitions, replication)
        finally:
            admin.close()
    admin = admin_or_bootstrap
    created = True
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": replication}},
            timeout_ms=REQUEST_TIMEOUT_MS,
        )
        log.info("created topic", extra={"topic": name, "partitions": partitions})
    except TopicAlreadyExistsError:
        created = False
    # Also after "already exists": a topic created a moment ago may not have leaders yet.
    admin.wait_for_topics([name], timeout_ms=TOPIC_READY_TIMEOUT_MS)
    return created
