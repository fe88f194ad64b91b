"""One customer against another's orders and account on the real command API and query API:
the documented status (404 exactly as for a missing resource, or 403), and both stores
unchanged after."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from shared.contract.principal import ACCOUNTS_WRITE, ORDERS_WRITE, READ_ALL, READ_OWN
from tests.security.system import SecuritySystem

ALICE, BOB = "c-alice", "c-bob"
CUSTOMER_SCOPES = (ORDERS_WRITE, ACCOUNTS_WRITE, READ_OWN)
LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "3.00"}]
MISSING_ORDER, MISSING_CUSTOMER = "o-nowhere", "c-nowhere"
BOB_ORDER = "o-bob-1"
# Missing ids as long as Bob's, so even Content-Length cannot tell the two apart.
UNKNOWN_ORDER, UNKNOWN_CUSTOMER = "o-nob-1", "c-nob"
# Bob's resources on the query API, each of which Alice must find exactly as a missing one.
BOBS_VIEWS = [
    f"/orders/{BOB_ORDER}", f"/orders/{BOB_ORDER}?min_version=1", f"/orders/{BOB_ORDER}/history",
    f"/customers/{BOB}", f"/customers/{BOB}/orders", f"/accounts/{BOB}",
    f"/accounts/{BOB}?min_version=1", f"/accounts/{BOB}/statement",
]  # fmt: skip
# What each request gets of its own, whatever it asked for.
PER_RESPONSE_HEADERS = {"X-Correlation-ID", "traceparent", "Date"}


@pytest.fixture(scope="module")
def security_service_env() -> dict[str, str]:
    """A short ?min_version wait: Alice's probes of Bob's views wait it out, as for a missing id."""
    return {"READ_YOUR_WRITES_MAX_WAIT_MS": "300"}


@dataclass(frozen=True)
class World:
    """Alice's and Bob's accounts and orders, and what both stores held before any attack."""

    system: SecuritySystem
    alice_order: str
    alice_paid_order: str
    bob: dict[str, str]
    head: int
    events: list[dict[str, Any]]
    views: dict[str, Any]


def place(system: SecuritySystem, headers: dict[str, str], customer: str, order_id: str) -> None:
    body = {"order_id": order_id, "customer_id": customer, "lines": LINES}
    assert system.command("POST", "/orders", json=body, headers=headers).status_code == 201


@pytest.fixture(scope="module")
def world(security_system: SecuritySystem) -> World:
    system = security_system
    alice = system.headers("user-alice", CUSTOMER_SCOPES, ALICE)
    bob = system.headers("user-bob", CUSTOMER_SCOPES, BOB)
    for customer in (ALICE, BOB):
        body = {"customer_id": customer, "initial_deposit": "100.00"}
        assert system.command("POST", "/accounts", json=body, headers=system.admin).ok
    place(system, alice, ALICE, "o-alice-1")
    place(system, alice, ALICE, "o-alice-2")
    paid = system.command(
        "POST", "/orders/o-alice-2/status", json={"status": "PAID"}, headers=alice
    )
    assert paid.status_code == 200, paid.text
    place(system, bob, BOB, BOB_ORDER)
    system.rebuild_read_model()
    views = system.read_model_views(["o-alice-1", "o-alice-2", BOB_ORDER], [ALICE, BOB])
    head = system.head_position()
    return World(system, "o-alice-1", "o-alice-2", bob, head, system.all_events(), views)


@pytest.fixture
def unchanged(world: World) -> Iterator[World]:
    """After the test: the log holds the same events, and the read model projects the same."""
    yield world
    system = world.system
    assert system.head_position() == world.head
    assert system.all_events() == world.events
    system.rebuild_read_model()
    order_ids = [world.alice_order, world.alice_paid_order, BOB_ORDER]
    assert system.read_model_views(order_ids, [ALICE, BOB]) == world.views


def shape(response: requests.Response, resource_id: str) -> tuple[int, str, Any]:
    """Status, content type and body with the id blanked: what a prober could compare."""
    text = re.sub(re.escape(resource_id), "<id>", response.text)
    return response.status_code, response.headers["Content-Type"], text


def assert_same_as_missing(
    world: World, method: str, path: str, resource_id: str, missing_id: str, **kwargs: Any
) -> None:
    system, bob = world.system, world.bob
    theirs = system.command(method, path, headers=bob, **kwargs)
    missing = system.command(method, path.replace(resource_id, missing_id), headers=bob, **kwargs)
    assert theirs.status_code == 404, theirs.text
    assert "WWW-Authenticate" not in theirs.headers
    assert shape(theirs, resource_id) == shape(missing, missing_id)


@pytest.mark.parametrize(
    "method, suffix, body",
    [
        ("POST", "/status", {"status": "PAID"}),
        ("POST", "/status", {"status": "PAID", "expected_version": 1}),
        ("DELETE", "", None),
        ("DELETE", "", {"reason": "mine now"}),
        ("GET", "", None),
        ("GET", "?as_of_version=1", None),
    ],
)
def test_anothers_order_is_missing_to_pay_cancel_or_read(
    unchanged: World, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    order_id = unchanged.alice_order
    path = f"/orders/{order_id}{suffix}"
    assert_same_as_missing(unchanged, method, path, order_id, MISSING_ORDER, json=body)


@pytest.mark.parametrize("status", ["SHIPPED", "DELIVERED", "CANCELLED"])
def test_anothers_paid_order_is_missing_to_ship(unchanged: World, status: str) -> None:
    order_id = unchanged.alice_paid_order
    path = f"/orders/{order_id}/status"
    body = {"status": status}
    assert_same_as_missing(unchanged, "POST", path, order_id, MISSING_ORDER, json=body)


@pytest.mark.parametrize("suffix", ["", "?as_of_version=1"])
def test_anothers_account_is_missing_to_read(unchanged: World, suffix: str) -> None:
    path = f"/accounts/{ALICE}{suffix}"
    assert_same_as_missing(unchanged, "GET", path, ALICE, MISSING_CUSTOMER)


def forbidden(world: World, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = world.system.command(method, path, json=body, headers=world.bob)
    assert response.status_code == 403, response.text
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    problem: dict[str, Any] = response.json()
    return problem


@pytest.mark.parametrize("customer", [ALICE, MISSING_CUSTOMER])
def test_opening_anothers_account_is_403(unchanged: World, customer: str) -> None:
    body = {"customer_id": customer, "initial_deposit": "5.00"}
    assert forbidden(unchanged, "POST", "/accounts", body)["required_scopes"] == [ACCOUNTS_WRITE]


@pytest.mark.parametrize("order_id", [None, "o-bob-for-alice"])
def test_placing_an_order_for_another_customer_is_403(
    unchanged: World, order_id: str | None
) -> None:
    body: dict[str, Any] = {"customer_id": ALICE, "lines": LINES}
    if order_id:
        body["order_id"] = order_id
    assert forbidden(unchanged, "POST", "/orders", body)["required_scopes"] == [ORDERS_WRITE]


def test_depositing_into_or_reading_the_events_of_anothers_account_is_403(
    unchanged: World,
) -> None:
    forbidden(unchanged, "POST", f"/accounts/{ALICE}/deposits", {"amount": "1.00"})
    for path in (f"/accounts/{ALICE}/events", f"/orders/{unchanged.alice_order}/events"):
        response = unchanged.system.command("GET", path, headers=unchanged.bob)
        assert response.status_code == 403


def test_reusing_anothers_order_id_says_taken_and_nothing_about_the_order(
    unchanged: World,
) -> None:
    body = {"order_id": unchanged.alice_order, "customer_id": BOB, "lines": LINES}
    response = unchanged.system.command("POST", "/orders", json=body, headers=unchanged.bob)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"].endswith(":order-id-taken")
    for secret in (ALICE, "PLACED", "current_status", "version"):
        assert secret not in response.text


def query_shape(response: requests.Response, *ids: str) -> tuple[int, dict[str, str], str]:
    """Status, headers and body, with these ids blanked: all that a prober could compare."""
    text = response.text
    for resource_id in ids:
        text = text.replace(resource_id, "<id>")
    headers = {k: v for k, v in response.headers.items() if k not in PER_RESPONSE_HEADERS}
    return response.status_code, headers, text


@pytest.mark.parametrize("path", BOBS_VIEWS)
def test_anothers_views_are_exactly_missing_ones_on_the_query_api(world: World, path: str) -> None:
    system = world.system
    alice = system.headers("user-alice", [READ_OWN], ALICE)
    missing_path = path.replace(BOB_ORDER, UNKNOWN_ORDER).replace(BOB, UNKNOWN_CUSTOMER)
    hidden = system.query("GET", path, headers=alice)
    missing = system.query("GET", missing_path, headers=alice)
    assert hidden.status_code == 404, hidden.text
    assert "WWW-Authenticate" not in hidden.headers
    blanked = (BOB_ORDER, BOB, UNKNOWN_ORDER, UNKNOWN_CUSTOMER)
    assert query_shape(hidden, *blanked) == query_shape(missing, *blanked)
    # The view is there: its owner reads it, and so does read:all.
    for reader in (world.bob, system.headers("support-1", [READ_ALL])):
        shown = system.query("GET", path, headers=reader)
        assert shown.status_code == 200, shown.text
    # Reads write nothing: the read model, as it stands, shows what it showed before.
    order_ids = [world.alice_order, world.alice_paid_order, BOB_ORDER]
    assert system.read_model_views(order_ids, [ALICE, BOB]) == world.views
