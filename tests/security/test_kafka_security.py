"""Kafka over SASL_SSL with ACLs: the clients shared/infra/kafka.py builds from Settings, and
the real services configured through the KAFKA_* environment variables alone.

The broker tests share one secure broker of their own (devtools.kafka_security): TLS from a
throwaway CA, SCRAM-SHA-512 users admin, relay and projector, and least-privilege ACLs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kafka import KafkaAdminClient
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAuthorizationFailedError

from devtools.kafka_security import ADMIN_USER, PROJECTOR_USER, RELAY_USER, SecureKafka
from devtools.local_kafka import LocalKafka
from devtools.ports import free_port
from shared.contract.principal import ORDERS_WRITE, READ_OWN
from shared.infra.config import ConfigError, Settings
from shared.infra.kafka import create_admin, create_consumer, create_producer, ensure_topic
from tests.support.auth import bearer
from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceRunner, wait_until

TOPIC = "orders.events"
GROUP = "query-projector"
# Failing connections give up after this instead of the clients' 5 s bootstrap timeout.
FAST_FAIL = {"bootstrap_timeout_ms": 1_500}
LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "2.50"}]


@pytest.fixture(scope="module")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(
        port=free_port(),
        data_dir=tmp_path_factory.mktemp("secure-kafka"),
        security=SecureKafka(topic=TOPIC, group_id=GROUP, partitions=1),
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def credentials_env(broker: LocalKafka, user: str) -> dict[str, str]:
    """The documented KAFKA_* security variables a deployment sets for this user."""
    assert broker.secrets is not None
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": user,
        # Written with a trailing newline, which the clients must strip.
        "KAFKA_SASL_PASSWORD_FILE": str(broker.secrets.user(user).password_file),
        "KAFKA_SSL_CAFILE": str(broker.secrets.ca_file),
    }


def settings_as(broker: LocalKafka, user: str | None, **env: str) -> Settings:
    """Settings read from the environment variables a deployment would set for this user."""
    environ = {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "KAFKA_TOPIC": TOPIC}
    if user is not None:
        environ |= credentials_env(broker, user)
    return Settings.from_env(environ | env)


def send_one(settings: Settings, **overrides: Any) -> Any:
    """Produce one record with the relay's producer configuration; its RecordMetadata."""
    producer = create_producer(settings, **overrides)
    try:
        return producer.send(TOPIC, key=b"order-1", value=uuid.uuid4().bytes).get(timeout=10)
    finally:
        producer.close(timeout=2)


@pytest.mark.kafka
def test_relay_produces_and_projector_consumes_in_its_group(secure_kafka: LocalKafka) -> None:
    value = uuid.uuid4().bytes
    producer = create_producer(settings_as(secure_kafka, RELAY_USER))
    try:
        sent = producer.send(TOPIC, key=b"order-1", value=value).get(timeout=10)
    finally:
        producer.close()
    consumer = create_consumer(
        settings_as(secure_kafka, PROJECTOR_USER), TOPIC, group_id=GROUP, consumer_timeout_ms=10_000
    )
    try:
        received = next((r.value for r in consumer if r.offset == sent.offset), None)
        consumer.commit()  # needs READ on the group, not just on the topic
    finally:
        consumer.close()
    assert received == value


@pytest.mark.kafka
def test_projector_credentials_may_not_produce(secure_kafka: LocalKafka) -> None:
    projector = settings_as(secure_kafka, PROJECTOR_USER)
    # The idempotent producer is refused its producer id: no WRITE on any topic (KIP-679).
    with pytest.raises(KafkaError, match="ClusterAuthorizationFailedError"):
        send_one(projector)
    with pytest.raises(TopicAuthorizationFailedError):
        send_one(projector, enable_idempotence=False)


@pytest.mark.kafka
def test_the_services_carry_an_order_to_the_query_api_each_as_its_own_user(
    secure_kafka: LocalKafka, tmp_path: Path
) -> None:
    relay_env = credentials_env(secure_kafka, RELAY_USER)
    # The query API reads end offsets for its lag report: a reader, like the projector.
    reader_env = credentials_env(secure_kafka, PROJECTOR_USER)
    with ServiceRunner(tmp_path) as runner:
        system = OrderSystem(
            runner,
            secure_kafka.bootstrap_servers,
            TOPIC,
            relay_env=relay_env,
            projector_env=reader_env,
            query_api_env=reader_env,
            group_id=GROUP,  # the only group the projector's user may read in
        ).start()
        customer = bearer(runner.workdir, "user-kafka", [ORDERS_WRITE, READ_OWN], "c-kafka")
        body = {"customer_id": "c-kafka", "lines": LINES}
        placed = requests.post(
            f"{system.command_api.base_url}/orders", json=body, headers=customer, timeout=10
        )
        assert placed.status_code == 201, placed.text
        history_url = f"{system.query_api.base_url}/orders/{placed.json()['order_id']}/history"

        def projected() -> dict[str, Any] | None:
            shown = requests.get(history_url, headers=customer, timeout=10)
            return shown.json() if shown.status_code == 200 else None

        def stuck() -> str:
            return f"not projected:\n{system.relay.tail()}\n{system.projector.tail()}"

        history = wait_until(projected, 60, stuck, interval=0.25)
        assert [step["by"]["sub"] for step in history["history"]] == ["user-kafka"]
    # The services ran as these users without the broker's ACLs widening for them.
    with pytest.raises(TopicAuthorizationFailedError):
        send_one(settings_as(secure_kafka, PROJECTOR_USER), enable_idempotence=False)
    with pytest.raises(KafkaError, match="GroupAuthorizationFailed"):
        read_in_group(settings_as(secure_kafka, RELAY_USER))


def read_in_group(settings: Settings) -> None:
    """Join the projector's group and fetch the topic, as the projector does."""
    consumer = create_consumer(settings, TOPIC, group_id=GROUP, **FAST_FAIL)
    try:
        consumer.poll(timeout_ms=10_000)
    finally:
        consumer.close(autocommit=False)


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("user", "env"),
    [
        pytest.param(None, {}, id="plaintext"),
        pytest.param(None, {"KAFKA_SECURITY_PROTOCOL": "SSL"}, id="tls-without-sasl"),
        pytest.param(RELAY_USER, {}, id="wrong-password"),
    ],
)
def test_clients_without_valid_credentials_cannot_connect(
    secure_kafka: LocalKafka, tmp_path: Path, user: str | None, env: dict[str, str]
) -> None:
    if env.get("KAFKA_SECURITY_PROTOCOL") == "SSL":
        assert secure_kafka.secrets is not None
        env = env | {"KAFKA_SSL_CAFILE": str(secure_kafka.secrets.ca_file)}
    if user is not None:
        wrong = tmp_path / "wrong.password"
        wrong.write_text("not-the-password\n")
        env = env | {"KAFKA_SASL_PASSWORD_FILE": str(wrong)}
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        send_one(settings_as(secure_kafka, user, **env), **FAST_FAIL)


@pytest.mark.kafka
def test_controller_listener_refuses_plaintext(secure_kafka: LocalKafka) -> None:
    controller = f"127.0.0.1:{secure_kafka.controller_port}"
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(bootstrap_servers=controller, **FAST_FAIL).close()


@pytest.mark.kafka
def test_only_the_admin_creates_topics(secure_kafka: LocalKafka) -> None:
    admin, relay = (settings_as(secure_kafka, u) for u in (ADMIN_USER, RELAY_USER))
    assert ensure_topic(admin, f"admin-made-{uuid.uuid4().hex[:8]}", 1, 1) is True
    with pytest.raises(TopicAuthorizationFailedError):
        ensure_topic(relay, f"relay-made-{uuid.uuid4().hex[:8]}", 1, 1)
    # The relay and the projector call ensure_topic at startup: fine once the topic exists.
    assert ensure_topic(relay, TOPIC, 1, 1) is False
    assert ensure_topic(settings_as(secure_kafka, PROJECTOR_USER), TOPIC, 1, 1) is False


# ---------------------------------------------------------------------------------------------
# Settings that cannot work fail when a client is built, before any connection.

BUILDERS: list[Callable[[Settings], Any]] = [create_producer, create_consumer, create_admin]


def sasl_env(tmp_path: Path, **env: str) -> dict[str, str]:
    password = tmp_path / "password"
    password.write_text("secret\n")
    return {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "relay",
        "KAFKA_SASL_PASSWORD_FILE": str(password),
    } | env


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"KAFKA_SASL_USERNAME": ""}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SASL_PASSWORD_FILE": ""}, "KAFKA_SASL_PASSWORD_FILE"),
        ({"KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"}, "KAFKA_SASL_PASSWORD_FILE"),
        ({"KAFKA_SASL_MECHANISM": ""}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "KAFKA_SSL_CAFILE"),
    ],
)
def test_unusable_security_settings_raise_config_error_naming_the_variable(
    tmp_path: Path, build: Callable[[Settings], Any], change: dict[str, str], named: str
) -> None:
    settings = Settings.from_env(sasl_env(tmp_path, **change))
    with pytest.raises(ConfigError, match=named):
        build(settings)


def test_an_empty_password_file_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    settings = Settings.from_env(sasl_env(tmp_path, KAFKA_SASL_PASSWORD_FILE=str(empty)))
    with pytest.raises(ConfigError, match=r"KAFKA_SASL_PASSWORD_FILE .* is empty"):
        create_producer(settings)


def test_tls_files_without_tls_are_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")
    settings = Settings.from_env({"KAFKA_SSL_CAFILE": str(ca)})
    with pytest.raises(ConfigError, match="KAFKA_SECURITY_PROTOCOL"):
        create_producer(settings)
