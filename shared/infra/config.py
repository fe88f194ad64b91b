"""Every setting of both services, read from environment variables in this one place.

Defaults work on a developer machine: SQLite files under ./data and a Kafka broker on
127.0.0.1:9092 (the one `make run` starts).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

SQLITE_SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
AUTH_MODES = ("jwt", "dev")
# ?min_version waits one query-API process lets in at once (READ_YOUR_WRITES_MAX_WAITERS).
DEFAULT_MAX_WAITERS = 48


class ConfigError(ValueError):
    """An environment variable holds a value the services cannot use."""


@dataclass(frozen=True)
class Settings:
    """Configuration shared by the command service, the relay and the query side."""

    data_dir: Path
    event_store_url: str
    sqlite_synchronous: str
    command_api_host: str
    command_api_port: int
    command_api_workers: int
    command_max_body_bytes: int
    command_retry_attempts: int
    snapshot_every: int
    idempotency_key_ttl_seconds: int
    kafka_bootstrap_servers: str
    kafka_topic: str
    kafka_topic_partitions: int
    kafka_replication_factor: int
    kafka_delivery_timeout_ms: int
    relay_poll_interval_ms: int
    relay_batch_size: int
    relay_lease_seconds: float
    cloudevents_source: str
    read_model_url: str
    query_api_host: str
    query_api_port: int
    query_api_workers: int
    kafka_group_id: str
    command_api_url: str
    read_your_writes_max_wait_ms: int
    log_level: str
    metrics_dir: Path
    projector_log_events: bool
    projector_session_timeout_ms: int
    read_your_writes_max_waiters: int = DEFAULT_MAX_WAITERS
    auth_mode: str = "jwt"
    auth_jwks_url: str | None = None
    auth_public_key_file: Path | None = None
    auth_algorithms: tuple[str, ...] = ("ES256", "RS256")
    auth_issuer: str | None = None
    auth_audience: str = "event-sourced-orders"
    command_api_token_file: Path | None = None
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    # Base URL of an OTLP/HTTP collector; set, and with the otel extra, spans are exported.
    otel_exporter_otlp_endpoint: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the environment (os.environ by default)."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("DATA_DIR", "data"))
        synchronous = env.get("EVENT_STORE_SQLITE_SYNCHRONOUS", "FULL").upper()
        if synchronous not in SQLITE_SYNCHRONOUS_LEVELS:
            raise ConfigError(
                f"EVENT_STORE_SQLITE_SYNCHRONOUS must be one of {SQLITE_SYNCHRONOUS_LEVELS}"
            )
        event_store_url = env.get("EVENT_STORE_URL", f"sqlite:///{data_dir / 'events.db'}")
        auth_mode = env.get("AUTH_MODE", "jwt").strip().lower()
        if auth_mode not in AUTH_MODES:
            raise ConfigError(f"AUTH_MODE must be one of {AUTH_MODES}, got {auth_mode!r}")
        return cls(
            data_dir=data_dir,
            event_store_url=event_store_url,
            sqlite_synchronous=synchronous,
            command_api_host=env.get("COMMAND_API_HOST", "127.0.0.1"),
            command_api_port=_int(env, "COMMAND_API_PORT", 8001, 1, 65535),
            # Two processes use both cores of a small machine; on SQLite they hand the write lock
            # over through a lock file (shared/infra/db.py). bench.http_commands --quick on 2 cores:
            # 2 workers x 4 threads served 820-1090 orders/s against 558-573 for 1 worker, with a
            # p99 at half that rate of 9.8-12.7 ms against 11.1-14.8 ms.
            command_api_workers=_int(env, "COMMAND_API_WORKERS", 2, 1, 64),
            command_max_body_bytes=_int(env, "COMMAND_MAX_BODY_BYTES", 64 * 1024, 1024, 2**24),
            command_retry_attempts=_int(env, "COMMAND_RETRY_ATTEMPTS", 10, 1, 100),
            snapshot_every=_int(env, "SNAPSHOT_EVERY", 100, 0, 1_000_000),
            idempotency_key_ttl_seconds=_int(
                env, "IDEMPOTENCY_KEY_TTL_SECONDS", 86_400, 1, 30 * 86_400
            ),
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            kafka_topic=env.get("KAFKA_TOPIC", "orders.events"),
            kafka_topic_partitions=_int(env, "KAFKA_TOPIC_PARTITIONS", 3, 1, 10_000),
            kafka_replication_factor=_int(env, "KAFKA_REPLICATION_FACTOR", 1, 1, 100),
            kafka_delivery_timeout_ms=_int(
                env, "KAFKA_DELIVERY_TIMEOUT_MS", 15_000, 1_000, 600_000
            ),
            # An idle poll is one cheap max(position) query (see outbox/new_event_probe.py).
            relay_poll_interval_ms=_int(env, "RELAY_POLL_INTERVAL_MS", 2, 1, 60_000),
            relay_batch_size=_int(env, "RELAY_BATCH_SIZE", 500, 1, 100_000),
            relay_lease_seconds=float(_int(env, "RELAY_LEASE_SECONDS", 10, 1, 3600)),
            cloudevents_source=env.get(
                "CLOUDEVENTS_SOURCE", "urn:event-sourced-orders:command-service"
            ),
            read_model_url=env.get("READ_MODEL_URL", f"sqlite:///{data_dir / 'read_model.db'}"),
            query_api_host=env.get("QUERY_API_HOST", "127.0.0.1"),
            query_api_port=_int(env, "QUERY_API_PORT", 8002, 1, 65535),
            query_api_workers=_int(env, "QUERY_API_WORKERS", 2, 1, 64),
            kafka_group_id=env.get("KAFKA_GROUP_ID", "query-projector"),
            command_api_url=env.get("COMMAND_API_URL", "http://127.0.0.1:8001").rstrip("/"),
            read_your_writes_max_wait_ms=_int(env, "READ_YOUR_WRITES_MAX_WAIT_MS", 2000, 0, 30_000),
            # A waiting read holds a server thread; the query API gets this many threads more
            # than the usual 4, so waits never take the threads other reads need.
            read_your_writes_max_waiters=_int(
                env, "READ_YOUR_WRITES_MAX_WAITERS", DEFAULT_MAX_WAITERS, 1, 256
            ),
            log_level=env.get("LOG_LEVEL", "INFO").upper(),
            metrics_dir=Path(env.get("METRICS_DIR", str(data_dir / "metrics"))),
            projector_log_events=_bool(env, "PROJECTOR_LOG_EVENTS", True),
            # How soon a dead projector's partitions move (kafka-python's default is 45 s);
            # brokers refuse less than group.min.session.timeout.ms (6 s by default).
            projector_session_timeout_ms=_int(
                env, "PROJECTOR_SESSION_TIMEOUT_MS", 10_000, 1_000, 1_800_000
            ),
            auth_mode=auth_mode,
            auth_jwks_url=env.get("AUTH_JWKS_URL") or None,
            auth_public_key_file=_path(env, "AUTH_PUBLIC_KEY_FILE"),
            auth_algorithms=tuple(
                name.strip() for name in env.get("AUTH_ALGORITHMS", "ES256,RS256").split(",")
            ),
            auth_issuer=env.get("AUTH_ISSUER") or None,
            auth_audience=env.get("AUTH_AUDIENCE") or "event-sourced-orders",
            command_api_token_file=_path(env, "COMMAND_API_TOKEN_FILE"),
            kafka_security_protocol=env.get("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").upper(),
            kafka_sasl_mechanism=env.get("KAFKA_SASL_MECHANISM") or None,
            kafka_sasl_username=env.get("KAFKA_SASL_USERNAME") or None,
            kafka_sasl_password_file=_path(env, "KAFKA_SASL_PASSWORD_FILE"),
            kafka_ssl_cafile=_path(env, "KAFKA_SSL_CAFILE"),
            kafka_ssl_certfile=_path(env, "KAFKA_SSL_CERTFILE"),
            kafka_ssl_keyfile=_path(env, "KAFKA_SSL_KEYFILE"),
            otel_exporter_otlp_endpoint=env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None,
        )

    def replace(self, **changes: object) -> Settings:
        """A copy with some settings changed (tests and benchmarks use this)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw) if raw else None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")
