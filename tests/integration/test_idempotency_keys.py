"""Idempotency-Key on every command endpoint (Flask test client, real SQLite event log)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from flask.testing import FlaskClient

from command_service.adapters.event_store import EventStore
from command_service.http.app import create_app
from shared.infra.config import Settings
from tests.integration.test_command_api import assert_problem, order_body


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def open_account(client: FlaskClient, amount: str = "100.00") -> None:
    body = {"customer_id": "c-1", "initial_deposit": amount}
    assert client.post("/accounts", json=body).status_code == 201


def test_a_retried_placement_gets_the_first_response(
    client: FlaskClient, store: EventStore
) -> None:
    body = order_body(None)  # no order_id: without the key a retry would place a second order
    first = client.post("/orders", json=body, headers=keyed("k-1"))
    again = client.post("/orders", json=body, headers=keyed("k-1"))
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert store.head_position() == 1


def test_the_same_key_with_another_request_is_422_and_writes_nothing(
    client: FlaskClient, store: EventStore
) -> None:
    client.post("/orders", json=order_body("o-1"), headers=keyed("k-1"))
    other = client.post("/orders", json=order_body("o-2"), headers=keyed("k-1"))
    assert assert_problem(other, 422, "Idempotency-Key")["type"].endswith(":idempotency-key-reused")
    on_another_endpoint = client.post(
        "/accounts", json={"customer_id": "c-1"}, headers=keyed("k-1")
    )
    assert_problem(on_another_endpoint, 422, "Idempotency-Key")
    assert store.head_position() == 1


def test_json_spacing_and_key_order_do_not_make_another_request(client: FlaskClient) -> None:
    open_account(client)
    first = client.post(
        "/accounts/c-1/deposits",
        data='{"amount": "5.00", "deposit_id": "d"}',
        content_type="application/json",
        headers=keyed("k-2"),
    )
    again = client.post(
        "/accounts/c-1/deposits",
        data='{ "deposit_id":"d",\n "amount":"5.00" }',
        content_type="application/json",
        headers=keyed("k-2"),
    )
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()


def test_a_deposit_retried_with_its_key_counts_once(client: FlaskClient) -> None:
    open_account(client)
    for _ in range(3):
        response = client.post(
            "/accounts/c-1/deposits", json={"amount": "10.00"}, headers=keyed("dep-key")
        )
        assert response.status_code == 200
    assert client.get("/accounts/c-1").get_json()["balance"] == "110.00"


def test_a_status_change_retried_with_its_key_is_not_an_invalid_transition(
    client: FlaskClient,
) -> None:
    open_account(client)
    client.post("/orders", json=order_body("o-1"))
    paid = client.post("/orders/o-1/status", json={"status": "PAID"}, headers=keyed("pay-1"))
    again = client.post("/orders/o-1/status", json={"status": "PAID"}, headers=keyed("pay-1"))
    assert paid.status_code == again.status_code == 200
    assert again.get_json() == paid.get_json()
    cancel = client.delete("/orders/o-1", headers=keyed("cancel-1"))
    assert client.delete("/orders/o-1", headers=keyed("cancel-1")).get_json() == cancel.get_json()


def test_a_refused_command_is_not_stored_so_its_retry_runs_again(client: FlaskClient) -> None:
    client.post("/orders", json=order_body("o-1"))
    refused = client.post("/orders/o-1/status", json={"status": "PAID"}, headers=keyed("p"))
    assert refused.status_code == 409  # no account yet
    open_account(client)
    retried = client.post("/orders/o-1/status", json={"status": "PAID"}, headers=keyed("p"))
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "é"])
def test_a_malformed_key_is_400(client: FlaskClient, store: EventStore, key: str) -> None:
    headers = {"Idempotency-Key": key}
    assert_problem(client.post("/orders", json=order_body(), headers=headers), 400)
    assert store.head_position() == 0


def test_keys_expire(command_settings: Settings) -> None:
    client = create_app(replace(command_settings, idempotency_key_ttl_seconds=1)).test_client()
    open_account(client)
    client.post("/accounts/c-1/deposits", json={"amount": "1.00"}, headers=keyed("old"))
    time.sleep(1.2)
    again = client.post("/accounts/c-1/deposits", json={"amount": "1.00"}, headers=keyed("old"))
    assert "Idempotent-Replayed" not in again.headers
    assert client.get("/accounts/c-1").get_json()["balance"] == "102.00"


def test_concurrent_requests_with_one_key_write_once(
    client: FlaskClient, store: EventStore
) -> None:
    open_account(client)
    app = client.application
    barrier = threading.Barrier(8)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def deposit() -> None:
        own = app.test_client()
        barrier.wait()
        response = own.post(
            "/accounts/c-1/deposits", json={"amount": "1.00"}, headers=keyed("race")
        )
        with lock:
            answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=deposit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in answers] == [200] * 8
    assert len({str(body) for _, body in answers}) == 1
    assert client.get("/accounts/c-1").get_json()["balance"] == "101.00"
    assert store.stream_version("account:c-1") == 3
