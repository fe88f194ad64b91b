"""One running system for every console test: command API, relay, query API, projector and
orders-console as subprocesses on a topic of their own, with data written once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.integration.query_support import OrderEventLog, produce, produce_raw
from tests.support.auth import bearer, token
from tests.support.order_system import OrderSystem
from tests.support.processes import HttpService, ServiceRunner, wait_until
from tests.support.topics import fresh_topic

CUSTOMER = "c-console"
PAYLOAD_PRODUCT = "p-zebra-42"  # a payload value search must find


@dataclass
class ConsoleSystem:
    """The running system, the console, the data written, and tokens for it."""

    system: OrderSystem
    console: HttpService
    order_id: str
    ghost_order: str  # its v2 event is parked until the test places its v1
    admin_token: str
    reader_token: str

    @property
    def url(self) -> str:
        return self.console.base_url


@pytest.fixture(scope="package")
def console_topic(kafka_bootstrap: str) -> Iterator[str]:
    with fresh_topic(kafka_bootstrap, "console") as name:
        yield name


@pytest.fixture(scope="package")
def console_system(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, console_topic: str
) -> Iterator[ConsoleSystem]:
    workdir = tmp_path_factory.mktemp("console-system")
    with ServiceRunner(workdir) as runner:
        system = OrderSystem(runner, kafka_bootstrap, console_topic).start()
        console = runner.start_http(
            "console",
            "orders-console",
            "ops.console.server",
            "CONSOLE_HOST",
            "CONSOLE_PORT",
            COMMAND_API_URL=system.command_api.base_url,
            QUERY_API_URL=system.query_api.base_url,
            CONSOLE_SAMPLE_INTERVAL_MS="1000",
            CONSOLE_INDEX_INTERVAL_MS="200",
        )
        admin = system.admin_headers
        order_id = f"o-{uuid.uuid4().hex[:8]}"
        api = system.command_api.base_url
        opened = requests.post(
            f"{api}/accounts",
            json={"customer_id": CUSTOMER, "initial_deposit": "100.00"},
            headers=admin,
            timeout=10,
        )
        assert opened.status_code == 201, opened.text
        placed = requests.post(
            f"{api}/orders",
            json={
                "order_id": order_id,
                "customer_id": CUSTOMER,
                "lines": [{"product_id": PAYLOAD_PRODUCT, "quantity": 2, "unit_price": "12.50"}],
            },
            headers=admin,
            timeout=10,
        )
        assert placed.status_code == 201, placed.text
        paid = requests.post(
            f"{api}/orders/{order_id}/status", json={"status": "PAID"}, headers=admin, timeout=10
        )
        assert paid.status_code == 200, paid.text
        ghost = _park_a_gap(system, kafka_bootstrap, console_topic)
        produce_raw(kafka_bootstrap, console_topic, [(b"o-garbage", b"not json at all", [])])
        wait_until(lambda: _parked(system) >= 2, timeout=60, message="two parked events")
        wait_until(
            lambda: _projected_version(system, order_id) == 2, timeout=60, message="order paid"
        )
        yield ConsoleSystem(
            system=system,
            console=console,
            order_id=order_id,
            ghost_order=ghost,
            admin_token=token(workdir, sub="op-admin"),
            reader_token=token(workdir, sub="support-sam", scopes=["read:all"]),
        )


def _park_a_gap(system: OrderSystem, bootstrap: str, topic: str) -> str:
    """Publish an order's v2 (a cancel) while the log has no v1: the projector parks it."""
    ghost = f"o-ghost-{uuid.uuid4().hex[:6]}"
    log = OrderEventLog()
    log.place(ghost, CUSTOMER, [("p-1", 1, 500)])
    produce(bootstrap, topic, [log.cancel(ghost)])
    return ghost


def _parked(system: OrderSystem) -> int:
    response = requests.get(
        f"{system.query_api.base_url}/parked", headers=system.admin_headers, timeout=5
    )
    return int(response.json()["total"]) if response.ok else 0


def _projected_version(system: OrderSystem, order_id: str) -> int | None:
    response = requests.get(
        f"{system.query_api.base_url}/orders/{order_id}", headers=system.admin_headers, timeout=5
    )
    return int(response.json()["version"]) if response.ok else None


def signed_in_session(url: str, bearer_token: str) -> requests.Session:
    """A requests session signed in to the console (cookie and CSRF token, as a browser)."""
    session = requests.Session()
    page = session.get(f"{url}/sign-in", timeout=10)
    csrf = csrf_of(page.text)
    session.post(f"{url}/sign-in", data={"token": bearer_token, "csrf_token": csrf}, timeout=10)
    return session


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


__all__ = ["CUSTOMER", "PAYLOAD_PRODUCT", "ConsoleSystem", "bearer", "csrf_of", "signed_in_session"]
