"""Accounts and payments through the command API (Flask test client, real SQLite event log)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from command_service.adapters.event_store import EventStore
from tests.integration.test_command_api import assert_problem, order_body


def open_account(client: FlaskClient, **body: Any) -> Any:
    response = client.post("/accounts", json={"customer_id": "c-1", **body})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response


def place(client: FlaskClient, order_id: str = "o-1") -> None:
    # 2 x 12.50 + 0.99 = 25.99
    assert client.post("/orders", json=order_body(order_id)).status_code == 201


def pay(client: FlaskClient, order_id: str = "o-1") -> Any:
    return client.post(f"/orders/{order_id}/status", json={"status": "PAID"})


def test_open_account_with_initial_deposit(client: FlaskClient, store: EventStore) -> None:
    response = open_account(client, initial_deposit="30.00")
    assert response.get_json() == {
        "customer_id": "c-1",
        "version": 2,
        "position": 2,
        "balance_cents": 3000,
        "balance": "30.00",
    }
    assert response.headers["Location"] == "/accounts/c-1"
    assert [e.type for e in store.load_stream("account:c-1")] == [
        "AccountOpened",
        "FundsDeposited",
    ]


def test_initial_deposit_may_be_given_in_cents(client: FlaskClient) -> None:
    assert open_account(client, initial_deposit_cents=1234).get_json()["balance"] == "12.34"


def test_opening_again_with_the_same_request_is_a_safe_retry(
    client: FlaskClient, store: EventStore
) -> None:
    first = open_account(client, initial_deposit="5.00")
    again = open_account(client, initial_deposit="5.00")
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert store.head_position() == 2


def test_opening_again_with_another_request_is_409(client: FlaskClient, store: EventStore) -> None:
    open_account(client, initial_deposit="5.00")
    response = client.post("/accounts", json={"customer_id": "c-1", "initial_deposit": "6.00"})
    body = assert_problem(response, 409)
    assert body["type"].endswith(":account-already-exists")
    assert store.head_position() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "customer_id"),
        ({"customer_id": "a:b"}, "customer_id"),
        ({"customer_id": "c-1", "initial_deposit": "-1.00"}, "initial_deposit"),
        ({"customer_id": "c-1", "initial_deposit": "1.001"}, "initial_deposit"),
        ({"customer_id": "c-1", "initial_deposit": "2000000.00"}, "initial_deposit"),
        ({"customer_id": "c-1", "initial_deposit_cents": 1.5}, "initial_deposit_cents"),
        ({"customer_id": "c-1", "initial_deposit_cents": "100"}, "initial_deposit_cents"),
        ({"customer_id": "c-1", "initial_deposit": "1", "initial_deposit_cents": 1}, "initial"),
    ],
)
def test_invalid_opening_is_422_naming_the_field(
    client: FlaskClient, store: EventStore, body: dict[str, Any], field: str
) -> None:
    response = client.post("/accounts", json=body)
    problem = assert_problem(response, 422)
    assert any(key.startswith(field) for key in problem["errors"]), problem
    assert store.head_position() == 0


def test_deposit_adds_to_the_balance(client: FlaskClient) -> None:
    open_account(client)
    response = client.post("/accounts/c-1/deposits", json={"amount": "10.50"})
    assert response.status_code == 200
    assert response.get_json()["balance_cents"] == 1050
    response = client.post("/accounts/c-1/deposits", json={"amount_cents": 50})
    assert response.get_json()["balance"] == "11.00"
    account = client.get("/accounts/c-1").get_json()
    assert (account["balance_cents"], account["deposited_cents"], account["version"]) == (
        1100,
        1100,
        3,
    )


def test_a_retried_deposit_id_counts_once(client: FlaskClient, store: EventStore) -> None:
    open_account(client)
    body = {"amount": "7.00", "deposit_id": "dep-1"}
    first = client.post("/accounts/c-1/deposits", json=body)
    again = client.post("/accounts/c-1/deposits", json=body)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get("/accounts/c-1").get_json()["balance_cents"] == 700
    other = client.post("/accounts/c-1/deposits", json={**body, "amount": "8.00"})
    assert assert_problem(other, 409)["type"].endswith(":payment-rule-violated")
    assert store.head_position() == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "0.001"}, "amount"),
        ({"amount_cents": 0}, "amount_cents"),
        ({"amount": "1", "deposit_id": "has space"}, "deposit_id"),
    ],
)
def test_invalid_deposit_is_422(
    client: FlaskClient, store: EventStore, body: dict[str, Any], field: str
) -> None:
    open_account(client)
    response = client.post("/accounts/c-1/deposits", json=body)
    problem = assert_problem(response, 422)
    assert any(key.startswith(field) for key in problem["errors"]), problem
    assert store.head_position() == 1


def test_json_number_amounts_are_read_as_decimals_never_floats(client: FlaskClient) -> None:
    open_account(client)
    for _ in range(3):
        client.post(
            "/accounts/c-1/deposits", data='{"amount": 0.1}', content_type="application/json"
        )
    assert client.get("/accounts/c-1").get_json()["balance"] == "0.30"


def test_deposit_into_a_missing_account_is_404(client: FlaskClient, store: EventStore) -> None:
    response = client.post("/accounts/nobody/deposits", json={"amount": "1.00"})
    assert assert_problem(response, 404)["type"].endswith(":account-not-found")
    assert_problem(client.get("/accounts/nobody"), 404)
    assert_problem(client.get("/accounts/nobody/events"), 404)
    assert store.head_position() == 0


def test_paying_debits_the_account_in_the_same_append(
    client: FlaskClient, store: EventStore
) -> None:
    open_account(client, initial_deposit="30.00")
    place(client)
    response = pay(client)
    assert response.status_code == 200
    body = response.get_json()
    assert body["account"] == {
        "customer_id": "c-1",
        "version": 3,
        "movement": "debit",
        "amount_cents": 2599,
        "amount": "25.99",
        "balance_cents": 401,
        "balance": "4.01",
    }
    (debit,) = [e for e in store.load_stream("account:c-1") if e.type == "AccountDebited"]
    paid = store.load_stream("o-1")[-1]
    assert debit.data == {
        "customer_id": "c-1",
        "order_id": "o-1",
        "amount_cents": 2599,
        "balance_cents": 401,
    }
    assert debit.position == paid.position + 1
    assert debit.metadata["causation_id"] == paid.metadata["causation_id"]
    events = client.get("/accounts/c-1/events").get_json()
    assert [e["type"] for e in events["events"]] == [
        "AccountOpened",
        "FundsDeposited",
        "AccountDebited",
    ]


def test_paying_without_an_account_is_409_and_writes_nothing(
    client: FlaskClient, store: EventStore
) -> None:
    place(client)
    body = assert_problem(pay(client), 409)
    assert body["type"].endswith(":account-required")
    assert "POST /accounts" in body["detail"]
    assert store.head_position() == 1


def test_paying_without_enough_funds_is_409_and_writes_nothing(
    client: FlaskClient, store: EventStore
) -> None:
    open_account(client, initial_deposit="25.98")
    place(client)
    body = assert_problem(pay(client), 409)
    assert body["type"].endswith(":insufficient-funds")
    assert (body["balance_cents"], body["required_cents"]) == (2598, 2599)
    assert "0.01" in body["detail"]
    assert store.head_position() == 3
    assert client.get("/orders/o-1").get_json()["status"] == "PLACED"
    client.post("/accounts/c-1/deposits", json={"amount": "0.01"})
    assert pay(client).status_code == 200


@pytest.mark.parametrize(
    "cancel",
    [
        lambda c: c.delete("/orders/o-1"),
        lambda c: c.post("/orders/o-1/status", json={"status": "CANCELLED"}),
    ],
)
def test_cancelling_a_paid_order_credits_it_back(client: FlaskClient, cancel: Any) -> None:
    open_account(client, initial_deposit="30.00")
    place(client)
    pay(client)
    response = cancel(client)
    assert response.status_code == 200
    assert response.get_json()["account"]["movement"] == "credit"
    assert response.get_json()["account"]["balance_cents"] == 3000
    account = client.get("/accounts/c-1").get_json()
    assert (account["debited_cents"], account["credited_cents"]) == (2599, 2599)


def test_cancelling_an_unpaid_order_moves_no_money(client: FlaskClient, store: EventStore) -> None:
    open_account(client, initial_deposit="30.00")
    place(client)
    response = client.delete("/orders/o-1")
    assert response.status_code == 200
    assert "account" not in response.get_json()
    assert store.stream_version("account:c-1") == 2


def test_account_streams_are_not_reachable_as_orders(client: FlaskClient) -> None:
    open_account(client)
    assert_problem(client.get("/orders/account:c-1"), 404)
    assert_problem(client.get("/orders/account:c-1/events"), 404)
    response = client.post("/orders/account:c-1/status", json={"status": "PAID"})
    assert_problem(response, 404)
