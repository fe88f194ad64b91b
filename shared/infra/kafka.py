"""Kafka clients built from Settings, with timeouts that keep a dead broker from hanging us.

The relay publishes with the producer; the query side's projector consumes with the consumer.
Every blocking call is bounded: a client whose broker is gone fails within seconds and the
caller decides whether to retry, instead of waiting on kafka-python's minute-long defaults.
Every client gets the same TLS and SASL options (see _security_options); a setting that
would be ignored or cannot be used raises ConfigError when the client is built.
"""

from __future__ import annotations

import logging
import os
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError

from shared.infra.config import ConfigError, Settings

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
# kafka-python (3.0.12) bootstraps from one server picked at random and gives that one connect
# the whole bootstrap timeout, so a server that drops packets (a host or link down, not a
# refusal) fails a third of new clients' starts on a three-broker cluster. Servers that do not
# accept a TCP connection within this are left out of a new client's bootstrap list.
BOOTSTRAP_PROBE_TIMEOUT_S = 1.0

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
# The mechanisms that need nothing beyond a username and a password.
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _connection_options(settings: Settings) -> dict[str, Any]:
    return {
        **_bounded_options(settings.kafka_bootstrap_servers),
        **_security_options(settings),
    }


def _bounded_options(bootstrap_servers: str) -> dict[str, Any]:
    return {
        "bootstrap_servers": reachable_servers(bootstrap_servers.split(",")),
        "request_timeout_ms": REQUEST_TIMEOUT_MS,
        "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
        "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    }


def reachable_servers(servers: list[str]) -> list[str]:
    """The servers that accept a TCP connection now, in order; all of them if none does.

    Not a health check: a client bootstrapped from the others still learns of every broker
    from the cluster's metadata, and talks to this one once it answers again.
    """
    if len(servers) < 2:
        return servers
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        accepted = list(pool.map(_accepts_connection, servers))
    reachable = [server for server, ok in zip(servers, accepted, strict=True) if ok]
    if len(reachable) < len(servers):
        left_out = [server for server in servers if server not in reachable]
        log.warning("bootstrap servers not reachable; left out", extra={"servers": left_out})
    return reachable or servers


def _accepts_connection(server: str) -> bool:
    host, _, port = re.sub(r"^.*://", "", server.strip()).rpartition(":")
    if not host or not port.isdigit():
        return True  # not ours to judge: kafka-python parses (and rejects) it
    try:
        socket.create_connection((host.strip("[]"), int(port)), BOOTSTRAP_PROBE_TIMEOUT_S).close()
    except OSError:
        return False
    return True


def _security_options(settings: Settings) -> dict[str, Any]:
    """kafka-python's TLS and SASL options from Settings; ConfigError if they do not fit."""
    protocol = settings.kafka_security_protocol
    if protocol not in SECURITY_PROTOCOLS:
        raise ConfigError(f"KAFKA_SECURITY_PROTOCOL must be one of {SECURITY_PROTOCOLS}")
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        options.update(_sasl_options(settings))
    elif settings.kafka_sasl_mechanism or settings.kafka_sasl_username:
        # kafka-python would ignore them and connect without authenticating.
        raise ConfigError(
            f"KAFKA_SASL_MECHANISM/KAFKA_SASL_USERNAME are set but KAFKA_SECURITY_PROTOCOL is "
            f"{protocol}; use SASL_SSL (or SASL_PLAINTEXT)"
        )
    if protocol.endswith("SSL"):
        options.update(_ssl_options(settings))
    elif settings.kafka_ssl_cafile or settings.kafka_ssl_certfile or settings.kafka_ssl_keyfile:
        raise ConfigError(
            f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL is {protocol}; "
            "use SSL or SASL_SSL"
        )
    return options


def _sasl_options(settings: Settings) -> dict[str, Any]:
    mechanism = (settings.kafka_sasl_mechanism or "").upper()
    if mechanism not in SASL_MECHANISMS:
        raise ConfigError(
            f"KAFKA_SASL_MECHANISM must be one of {SASL_MECHANISMS} when "
            f"KAFKA_SECURITY_PROTOCOL is {settings.kafka_security_protocol}"
        )
    if not settings.kafka_sasl_username:
        raise ConfigError(f"KAFKA_SASL_USERNAME is required for KAFKA_SASL_MECHANISM={mechanism}")
    if settings.kafka_sasl_password_file is None:
        raise ConfigError(
            f"KAFKA_SASL_PASSWORD_FILE is required for KAFKA_SASL_MECHANISM={mechanism}"
        )
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": _read_password(settings.kafka_sasl_password_file),
    }


def _read_password(path: Path) -> str:
    try:
        password = path.read_text().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"KAFKA_SASL_PASSWORD_FILE {path} cannot be read: {exc}") from None
    if not password:
        raise ConfigError(f"KAFKA_SASL_PASSWORD_FILE {path} is empty")
    return password


def _ssl_options(settings: Settings) -> dict[str, Any]:
    files = {
        "KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    if settings.kafka_ssl_keyfile and not settings.kafka_ssl_certfile:
        raise ConfigError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE")
    # kafka-python opens these only when it connects; fail at construction instead.
    for name, path in files.items():
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise ConfigError(f"{name} {path} is not a readable file")
    return {
        # Without a CA file the system's trust store verifies the broker.
        "ssl_cafile": _str_or_none(settings.kafka_ssl_cafile),
        "ssl_certfile": _str_or_none(settings.kafka_ssl_certfile),
        "ssl_keyfile": _str_or_none(settings.kafka_ssl_keyfile),
        "ssl_check_hostname": True,
    }


def _str_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


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


def ensure_topic(admin_or_source: Any, name: str, partitions: int, replication: int) -> bool:
    """Create a topic if it is missing and wait until it has leaders; True if it was created.

    Accepts a KafkaAdminClient, Settings, or a bootstrap servers string of a PLAINTEXT broker
    (for the latter two a client is opened and closed).
    """
    if isinstance(admin_or_source, Settings | str):
        admin = (
            create_admin(admin_or_source)
            if isinstance(admin_or_source, Settings)
            else KafkaAdminClient(
                client_id="orders-admin",
                security_protocol="PLAINTEXT",
                **_bounded_options(admin_or_source),
            )
        )
        try:
            return ensure_topic(admin, name, partitions, replication)
        finally:
            admin.close()
    admin = admin_or_source
    created = True
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": replication}},
            timeout_ms=REQUEST_TIMEOUT_MS,
        )
        log.info("created topic", extra={"topic": name, "partitions": partitions})
    except TopicAlreadyExistsError:
        created = False
    except TopicAuthorizationFailedError:
        # A least-privilege client (the relay, the projector) may not create topics; the
        # broker refuses even for an existing topic, so go on only if this one exists.
        if not _topic_exists(admin, name):
            raise
        created = False
    # Also after "already exists": a topic created a moment ago may not have leaders yet.
    admin.wait_for_topics([name], timeout_ms=TOPIC_READY_TIMEOUT_MS)
    return created


def _topic_exists(admin: Any, name: str) -> bool:
    """Whether the broker describes the topic to this client (it exists and we may see it)."""
    topics = admin.describe_topics([name])
    return any(t.get("name") == name and t.get("error_code") == 0 for t in topics)
