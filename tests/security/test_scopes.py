"""Scope boundaries on the real services: each route refuses a token lacking its scope (403
insufficient_scope, nothing written) and serves one holding just that scope."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests

from shared.contract.principal import (
    ACCOUNTS_DEPOSIT,
    ACCOUNTS_WRITE,
    ADMIN,
    EVENTS_READ,
    METRICS_READ,
    ORDERS_FULFIL,
    ORDERS_WRITE,
    READ_ALL,
    READ_OWN,
    SCOPES,
)
from tests.security.policies import COMMAND_POLICIES, PUBLIC, QUERY_POLICIES, concrete
from tests.security.system import SecuritySystem

CUSTOMER = "c-scope"
OWNER = "user-c-scope"
LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "2.00"}]
LIFECYCLE = ("PAID", "SHIPPED", "DELIVERED")
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/orders"): {"customer_id": CUSTOMER, "lines": LINES},
    ("POST", "/orders/<order_id>/status"): {"status": "PAID"},
    ("POST", "/accounts"): {"customer_id": CUSTOMER},
    ("POST", "/accounts/<customer_id>/deposits"): {"amount": "1.00"},
}


@pytest.fixture(scope="module")
def funded(security_system: SecuritySystem) -> SecuritySystem:
    """CUSTOMER has an account with money for every order these tests pay."""
    opened = security_system.command(
        "POST",
        "/accounts",
        json={"customer_id": CUSTOMER, "initial_deposit": "1000.00"},
        headers=security_system.admin,
    )
    assert opened.status_code == 201, opened.text
    return security_system


def new_order(system: SecuritySystem, status: str | None = None) -> str:
    """A fresh order of CUSTOMER's (placed by an admin), moved on to `status` if given."""
    order_id = f"o-{uuid.uuid4().hex[:10]}"
    body = {"order_id": order_id, "customer_id": CUSTOMER, "lines": LINES}
    assert system.command("POST", "/orders", json=body, headers=system.admin).status_code == 201
    steps = LIFECYCLE[: LIFECYCLE.index(status) + 1] if status else ()
    for step in steps:
        moved = system.command(
            "POST", f"/orders/{order_id}/status", json={"status": step}, headers=system.admin
        )
        assert moved.status_code == 200, moved.text
    return order_id


def with_only(system: SecuritySystem, *scopes: str, owner: bool = True) -> dict[str, str]:
    """A token of CUSTOMER's own (or a staff token) holding exactly `scopes`."""
    if owner:
        return system.headers(OWNER, scopes, CUSTOMER)
    return system.headers(f"staff-{'-'.join(scopes)}", scopes)


def assert_insufficient_scope(response: requests.Response, needed: set[str]) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json()["required_scopes"] == sorted(needed)
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="event-sourced-orders"')
    assert 'error="insufficient_scope"' in challenge


def guarded(policies: dict[tuple[str, str], Any]) -> list[tuple[str, str]]:
    return [route for route, scopes in policies.items() if scopes != PUBLIC]


@pytest.mark.parametrize(
    "service, method, rule",
    [("command", *route) for route in guarded(COMMAND_POLICIES)]
    + [("query", *route) for route in guarded(QUERY_POLICIES)],
)
def test_a_token_with_every_other_scope_is_403_and_writes_nothing(
    funded: SecuritySystem, service: str, method: str, rule: str
) -> None:
    policy = (COMMAND_POLICIES if service == "command" else QUERY_POLICIES)[(method, rule)]
    assert not isinstance(policy, str)
    others = [s for s in SCOPES if s != ADMIN and s not in policy]
    # The customer's own token, so ownership is never the reason: only the missing scope is.
    headers = funded.headers(OWNER, others, CUSTOMER)
    path = concrete(
        rule, order_id=new_order(funded), customer_id=CUSTOMER, product_id="p-1", parked_id="1"
    )
    head = funded.head_position()
    call = funded.command if service == "command" else funded.query
    response = call(method, path, json=BODIES.get((method, rule)), headers=headers)
    assert_insufficient_scope(response, set(policy))
    assert funded.head_position() == head


def test_orders_write_places_pays_and_cancels_own_orders(funded: SecuritySystem) -> None:
    writer = with_only(funded, ORDERS_WRITE)
    placed = funded.command("POST", "/orders", json=BODIES[("POST", "/orders")], headers=writer)
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["order_id"]
    paid = funded.command(
        "POST", f"/orders/{order_id}/status", json={"status": "PAID"}, headers=writer
    )
    assert paid.status_code == 200, paid.text
    cancelled = funded.command("DELETE", f"/orders/{order_id}", headers=writer)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "CANCELLED")


@pytest.mark.parametrize("status", ["SHIPPED", "DELIVERED"])
def test_fulfilment_needs_orders_fulfil_not_orders_write(
    funded: SecuritySystem, status: str
) -> None:
    before = "PAID" if status == "SHIPPED" else "SHIPPED"
    order_id = new_order(funded, before)
    head = funded.head_position()
    by_owner = funded.command(
        "POST",
        f"/orders/{order_id}/status",
        json={"status": status},
        headers=with_only(funded, ORDERS_WRITE),
    )
    assert_insufficient_scope(by_owner, {ORDERS_FULFIL})
    assert funded.head_position() == head
    warehouse = with_only(funded, ORDERS_FULFIL, owner=False)
    shipped = funded.command(
        "POST", f"/orders/{order_id}/status", json={"status": status}, headers=warehouse
    )
    assert (shipped.status_code, shipped.json()["status"]) == (200, status)


@pytest.mark.parametrize("owner", [True, False])
def test_orders_fulfil_cannot_pay_even_its_own_order(funded: SecuritySystem, owner: bool) -> None:
    order_id = new_order(funded)
    head = funded.head_position()
    response = funded.command(
        "POST",
        f"/orders/{order_id}/status",
        json={"status": "PAID"},
        headers=with_only(funded, ORDERS_FULFIL, owner=owner),
    )
    assert_insufficient_scope(response, {ORDERS_WRITE})
    assert funded.head_position() == head


def test_accounts_write_opens_own_account(funded: SecuritySystem) -> None:
    customer = f"c-{uuid.uuid4().hex[:8]}"
    headers = funded.headers(f"user-{customer}", [ACCOUNTS_WRITE], customer)
    opened = funded.command("POST", "/accounts", json={"customer_id": customer}, headers=headers)
    assert (opened.status_code, opened.json()["customer_id"]) == (201, customer)


def test_accounts_deposit_deposits_into_any_account(funded: SecuritySystem) -> None:
    gateway = with_only(funded, ACCOUNTS_DEPOSIT, owner=False)
    deposited = funded.command(
        "POST", f"/accounts/{CUSTOMER}/deposits", json={"amount": "1.00"}, headers=gateway
    )
    assert deposited.status_code == 200, deposited.text


@pytest.mark.parametrize("scope, owner", [(READ_OWN, True), (READ_ALL, True), (READ_ALL, False)])
def test_read_own_and_read_all_read_orders_and_accounts(
    funded: SecuritySystem, scope: str, owner: bool
) -> None:
    reader = with_only(funded, scope, owner=owner)
    order_id = new_order(funded)
    order = funded.command("GET", f"/orders/{order_id}", headers=reader)
    assert (order.status_code, order.json()["customer_id"]) == (200, CUSTOMER)
    account = funded.command("GET", f"/accounts/{CUSTOMER}", headers=reader)
    assert (account.status_code, account.json()["customer_id"]) == (200, CUSTOMER)


def test_events_read_reads_the_log_and_each_stream(funded: SecuritySystem) -> None:
    reader = with_only(funded, EVENTS_READ, owner=False)
    order_id = new_order(funded)
    for path in (
        "/events",
        "/events/head",
        f"/orders/{order_id}/events",
        f"/accounts/{CUSTOMER}/events",
    ):
        response = funded.command("GET", path, headers=reader)
        assert response.status_code == 200, (path, response.text)


@pytest.mark.parametrize("service", ["command", "query"])
def test_metrics_read_reads_the_metrics_of_both_services(
    funded: SecuritySystem, service: str
) -> None:
    call = funded.command if service == "command" else funded.query
    response = call("GET", "/metrics", headers=with_only(funded, METRICS_READ, owner=False))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    for scope in (READ_ALL, EVENTS_READ):  # operators' other scopes do not open it
        assert_insufficient_scope(
            call("GET", "/metrics", headers=with_only(funded, scope)), {METRICS_READ}
        )


def test_admin_holds_every_scope(funded: SecuritySystem) -> None:
    order_id = new_order(funded, "DELIVERED")  # placed, paid, shipped, delivered by admin
    events = funded.command("GET", f"/orders/{order_id}/events", headers=funded.admin)
    assert [e["type"] for e in events.json()["events"]][-1] == "OrderStatusChanged"
    assert funded.command("GET", "/metrics", headers=funded.admin).status_code == 200


def test_opening_with_a_first_deposit_needs_accounts_deposit(funded: SecuritySystem) -> None:
    customer = f"c-{uuid.uuid4().hex[:8]}"
    headers = funded.headers(f"user-{customer}", [ACCOUNTS_WRITE], customer)
    head = funded.head_position()
    body = {"customer_id": customer, "initial_deposit": "1000000.00"}
    opened = funded.command("POST", "/accounts", json=body, headers=headers)
    assert_insufficient_scope(opened, {ACCOUNTS_DEPOSIT})
    assert funded.head_position() == head
    # Without a first deposit, accounts:write alone opens one's own account.
    empty = funded.command("POST", "/accounts", json={"customer_id": customer}, headers=headers)
    assert empty.status_code == 201, empty.text
    assert empty.json()["balance_cents"] == 0
