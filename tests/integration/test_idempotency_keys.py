"""Idempotency-Key on every command endpoint (Flask test client, real SQLite event log).

The `client` fixture sends an admin token; keys are scoped to the token's sub.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from command_service.adapters.event_store import EventStore
from command_service.adapters.idempotency_store import idempotency_keys, scoped_key
from command_service.http.app import create_app
from shared.infra.config import Settings
from tests.integration.test_command_api import assert_problem, order_body
from tests.support.auth import bearer


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def admin_client(app: Flask, settings: Settings) -> FlaskClient:
    """A test client sending an admin token, as the `client` fixture does."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(settings.data_dir)["Authorization"]
    return client


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


def test_the_same_key_with_another_request_is_409_and_writes_nothing(
    client: FlaskClient, store: EventStore
) -> None:
    client.post("/orders", json=order_body("o-1"), headers=keyed("k-1"))
    other = client.post("/orders", json=order_body("o-2"), headers=keyed("k-1"))
    assert assert_problem(other, 409, "Idempotency-Key")["type"].endswith(":idempotency-key-reused")
    on_another_endpoint = client.post(
        "/accounts", json={"customer_id": "c-1"}, headers=keyed("k-1")
    )
    assert_problem(on_another_endpoint, 409, "Idempotency-Key")
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
    settings = replace(command_settings, idempotency_key_ttl_seconds=1)
    client = admin_client(create_app(settings), settings)
    open_account(client)
    client.post("/accounts/c-1/deposits", json={"amount": "1.00"}, headers=keyed("old"))
    time.sleep(1.2)
    again = client.post("/accounts/c-1/deposits", json={"amount": "1.00"}, headers=keyed("old"))
    assert "Idempotent-Replayed" not in again.headers
    assert client.get("/accounts/c-1").get_json()["balance"] == "102.00"


def test_concurrent_requests_with_one_key_write_once(
    client: FlaskClient, store: EventStore, command_settings: Settings
) -> None:
    open_account(client)
    app = client.application
    barrier = threading.Barrier(8)
    answers: list[tuple[int, Any]] = []
    lock = threading.Lock()

    def deposit() -> None:
        own = admin_client(app, command_settings)
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


# --- keys are the caller's own ---------------------------------------------------------------


def as_sub(settings: Settings, sub: str, key: str) -> dict[str, str]:
    """An admin token of `sub`, with an Idempotency-Key."""
    return {**bearer(settings.data_dir, sub=sub), **keyed(key)}


def test_one_key_from_two_callers_gives_two_independent_results(
    client: FlaskClient, store: EventStore, command_settings: Settings
) -> None:
    body = order_body(None)  # the same request: only the caller differs
    first = client.post("/orders", json=body, headers=as_sub(command_settings, "alice", "k"))
    other = client.post("/orders", json=body, headers=as_sub(command_settings, "bob", "k"))
    assert first.status_code == other.status_code == 201
    assert "Idempotent-Replayed" not in other.headers
    assert first.get_json()["order_id"] != other.get_json()["order_id"]
    assert store.head_position() == 2
    # Each caller's retry replays its own first response, never the other's.
    again = client.post("/orders", json=body, headers=as_sub(command_settings, "bob", "k"))
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == other.get_json()
    assert store.head_position() == 2


def test_another_callers_key_is_no_reuse_of_yours(
    client: FlaskClient, store: EventStore, command_settings: Settings
) -> None:
    client.post("/orders", json=order_body("o-1"), headers=as_sub(command_settings, "alice", "k"))
    # The same key with another request would be a 409 for alice; bob's runs as his own.
    bobs = client.post(
        "/orders", json=order_body("o-2"), headers=as_sub(command_settings, "bob", "k")
    )
    assert bobs.status_code == 201 and bobs.get_json()["order_id"] == "o-2"
    mine = client.post(
        "/orders", json=order_body("o-3"), headers=as_sub(command_settings, "alice", "k")
    )
    assert_problem(mine, 409, "Idempotency-Key")
    assert store.head_position() == 2


def test_the_stored_key_is_a_hash_of_caller_and_key_that_fits_the_column(
    client: FlaskClient, store: EventStore, command_settings: Settings
) -> None:
    sub, key = "s" * 300, "k" * 255  # together far longer than the String(255) column
    response = client.post("/orders", json=order_body(), headers=as_sub(command_settings, sub, key))
    assert response.status_code == 201
    with store.engine.connect() as conn:
        [stored] = conn.execute(select(idempotency_keys.c.key)).scalars().all()
    assert stored == scoped_key(sub, key) and len(stored) == 64
    assert sub not in stored and key not in stored


def test_scoped_keys_do_not_collide_where_a_concatenation_would() -> None:
    assert scoped_key("a:b", "c") != scoped_key("a", "b:c")
    assert scoped_key("a", "bc") != scoped_key("ab", "c")
    assert scoped_key("alice", "k") == scoped_key("alice", "k")


def test_a_key_lookup_while_the_database_is_down_is_unavailable_not_an_error() -> None:
    """Found by the cluster's PostgreSQL restart: every command carries a key, and the lookup
    before it raised the driver's error (a 500) where the append answers 503."""
    from sqlalchemy import create_engine

    from command_service.adapters.event_store import EventStoreUnavailable
    from command_service.adapters.idempotency_store import IdempotencyKeys
    from devtools.ports import free_port

    nobody_listens = f"postgresql+psycopg://orders@127.0.0.1:{free_port()}/orders"
    keys = IdempotencyKeys(create_engine(nobody_listens, connect_args={"connect_timeout": 2}), 60)
    with pytest.raises(EventStoreUnavailable, match="connection"):
        keys.lookup(scoped_key("alice", "k-1"))
