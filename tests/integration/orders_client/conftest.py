"""One running system (command API, relay, query API, projector on real Kafka and SQLite) for
every orders_client test, and clients holding tokens the services accept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from orders_client import Client, ProjectionBehind
from tests.support.auth import token
from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceRunner, wait_until
from tests.support.topics import fresh_topic

T = TypeVar("T")
CUSTOMER_SCOPES = ("orders:write", "accounts:write", "read:own")
MAX_WAIT_MS = 5000


@pytest.fixture(scope="package")
def system(tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str) -> Iterator[OrderSystem]:
    """The four processes on a fresh topic, shared by the package's tests."""
    with (
        fresh_topic(kafka_bootstrap, "client") as topic,
        ServiceRunner(tmp_path_factory.mktemp("orders-client")) as runner,
    ):
        system = OrderSystem(runner, kafka_bootstrap, topic)
        with pytest.MonkeyPatch.context() as env:
            # A min_version read waits up to this long: room for a busy machine's projector.
            env.setenv("READ_YOUR_WRITES_MAX_WAIT_MS", str(MAX_WAIT_MS))
            system.start()
        yield system


@pytest.fixture(scope="package")
def make_client(system: OrderSystem) -> Iterator[Callable[..., Client]]:
    """Client(command API, query API, token) with a token for `sub` and `scopes`, closed after."""
    made: list[Client] = []

    def make(
        sub: str = "test-admin",
        scopes: tuple[str, ...] = ("admin",),
        customer_id: str | None = None,
        **options: Any,
    ) -> Client:
        bearer = token(system.runner.workdir, sub, scopes, customer_id)
        options.setdefault("token", bearer)
        options.setdefault("query_url", system.query_api.base_url)
        client = Client(system.command_api.base_url, **options)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(scope="package")
def admin(make_client: Callable[..., Client]) -> Client:
    """A client with the admin token."""
    return make_client()


def customer_client(make_client: Callable[..., Client], customer_id: str, **options: Any) -> Client:
    """A client with a customer's own token: place and pay its orders, read its data."""
    return make_client(f"sub-{customer_id}", CUSTOMER_SCOPES, customer_id, **options)


def read_your_write(read: Callable[[], T], timeout: float = 60) -> T:
    """`read` (a min_version read) once the projection has reached the version."""

    def attempt() -> T | None:
        try:
            return read()
        except ProjectionBehind:
            return None

    return wait_until(attempt, timeout, "the projection never reached the version written")
