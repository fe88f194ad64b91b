"""A new Kafka client starts while one of its bootstrap servers lets connects hang (a broker cut
off from the network), instead of failing whenever kafka-python happens to pick that one."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.ports import free_port
from shared.infra.config import Settings
from shared.infra.kafka import create_admin, create_producer, reachable_servers

# Without the probe each start fails with probability 1/2 (two servers, one picked at random).
STARTS = 6


@pytest.fixture
def black_hole() -> Iterator[str]:
    """host:port of a listener whose accept queue is full: the kernel drops further SYNs."""
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    host, port = server.getsockname()
    filler = socket.create_connection((host, port), 5)  # never accepted; fills the queue
    try:
        yield f"{host}:{port}"
    finally:
        filler.close()
        server.close()


def test_a_server_that_lets_connects_hang_is_left_out(
    black_hole: str, kafka_bootstrap: str
) -> None:
    brokers = kafka_bootstrap.split(",")
    assert reachable_servers([black_hole, *brokers]) == brokers


def test_every_server_is_kept_when_none_answers(black_hole: str) -> None:
    refused = f"127.0.0.1:{free_port()}"
    assert reachable_servers([black_hole, refused]) == [black_hole, refused]
    assert reachable_servers([black_hole]) == [black_hole], "a single server is not probed"


@pytest.mark.parametrize("build", [create_producer, create_admin])
def test_clients_start_with_one_bootstrap_server_hanging(
    black_hole: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    build: Callable[[Settings], Any],
) -> None:
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": f"{black_hole},{kafka_bootstrap}"})
    for _ in range(STARTS):
        client = build(settings)  # raised "Unable to bootstrap" when it picked the black hole
        try:
            if hasattr(client, "partitions_for"):
                assert client.partitions_for(kafka_topic)
            else:
                assert kafka_topic in client.list_topics()
        finally:
            client.close()
