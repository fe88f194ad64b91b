"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devtools.local_kafka import LocalKafka
from devtools.ports import free_port
from tests.support.topics import fresh_topic

# ---------------------------------------------------------------------------------------------
# Kafka
#
# By default the suite starts its own single-node broker (devtools/local_kafka.py) on a free
# port. Set KAFKA_BOOTSTRAP_SERVERS to run against an already running broker instead.

KAFKA_BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"


@pytest.fixture(scope="session")
def _suite_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka | None]:
    """The suite's own broker, or None when an external one is configured."""
    if os.environ.get(KAFKA_BOOTSTRAP_ENV):
        yield None
        return
    broker = LocalKafka(port=free_port(), data_dir=tmp_path_factory.mktemp("kafka"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(_suite_kafka: LocalKafka | None) -> str:
    """Bootstrap servers of the broker the tests use (external or the suite's own)."""
    if _suite_kafka is None:
        return os.environ[KAFKA_BOOTSTRAP_ENV]
    return _suite_kafka.bootstrap_servers


@pytest.fixture(scope="session")
def local_kafka(_suite_kafka: LocalKafka | None) -> LocalKafka:
    """The suite's own broker, for tests that stop, kill or restart it.

    Such tests must leave it running (start it again in a finally block).
    """
    if _suite_kafka is None:
        pytest.skip(
            f"{KAFKA_BOOTSTRAP_ENV} points at an external broker; "
            "broker stop/start tests need the suite's own broker"
        )
    return _suite_kafka


@pytest.fixture
def kafka_topic(kafka_bootstrap: str, _suite_kafka: LocalKafka | None) -> Iterator[str]:
    """A fresh topic with 3 partitions, unique to the test, deleted afterwards."""
    if _suite_kafka is not None and not _suite_kafka.is_running:
        # An earlier fault test left the broker down; don't let it fail every later test.
        _suite_kafka.start()
    with fresh_topic(kafka_bootstrap, "test") as name:
        yield name
