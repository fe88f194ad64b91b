"""Idempotency keys are the caller's own, on the real command API: one key from two subjects
gives two independent results, and nobody can replay someone else's stored response."""

from __future__ import annotations

from typing import Any

from shared.contract.principal import ACCOUNTS_WRITE, ADMIN, ORDERS_WRITE
from tests.security.system import SecuritySystem

LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "1.50"}]
SCOPES = (ORDERS_WRITE, ACCOUNTS_WRITE)


def keyed(system: SecuritySystem, sub: str, customer: str | None, key: str) -> dict[str, str]:
    scopes = SCOPES if customer else (ADMIN,)
    return {**system.headers(sub, scopes, customer), "Idempotency-Key": key}


def post(system: SecuritySystem, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    return system.command("POST", path, json=body, headers=headers)


def test_one_key_from_two_admins_places_two_orders(security_system: SecuritySystem) -> None:
    system, key = security_system, "shared-key-1"
    body = {"customer_id": "c-any", "lines": LINES}  # no order_id: each placement is new
    first = post(system, keyed(system, "admin-one", None, key), "/orders", body)
    second = post(system, keyed(system, "admin-two", None, key), "/orders", body)
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    assert first.json()["order_id"] != second.json()["order_id"]
    # And each one's retry is answered from its own record.
    for sub, original in (("admin-one", first), ("admin-two", second)):
        again = post(system, keyed(system, sub, None, key), "/orders", body)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == original.json()


def test_anothers_key_with_their_exact_request_is_no_replay_of_their_response(
    security_system: SecuritySystem,
) -> None:
    system, key = security_system, "shared-key-2"
    alices = {"customer_id": "c-alice", "lines": LINES}
    placed = post(system, keyed(system, "user-alice", "c-alice", key), "/orders", alices)
    assert placed.status_code == 201
    head = system.head_position()
    # Were keys global, Bob would get Alice's 201 (her order id) back as a "replay".
    stolen = post(system, keyed(system, "user-bob", "c-bob", key), "/orders", alices)
    assert stolen.status_code == 403, stolen.text
    assert placed.json()["order_id"] not in stolen.text
    assert system.head_position() == head


def test_the_same_key_from_two_customers_opens_both_accounts(
    security_system: SecuritySystem,
) -> None:
    system, key = security_system, "shared-key-3"
    for customer in ("c-one", "c-two"):
        headers = keyed(system, f"user-{customer}", customer, key)
        opened = post(system, headers, "/accounts", {"customer_id": customer})
        assert opened.status_code == 201, opened.text
        assert "Idempotent-Replayed" not in opened.headers
        assert opened.json()["customer_id"] == customer
