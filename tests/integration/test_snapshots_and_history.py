"""Snapshots (load = latest snapshot + later events) and temporal queries, on real SQLite."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from command_service.adapters.event_store import EventStore, Snapshot, snapshots_table
from command_service.application.accounts import AccountService
from command_service.application.commands import CommandContext
from command_service.domain import account as acc
from command_service.http.app import create_app
from shared.contract.envelope import format_timestamp, parse_timestamp
from shared.contract.principal import ACCOUNTS_DEPOSIT, ACCOUNTS_WRITE, READ_OWN, Principal
from shared.infra.config import Settings
from shared.infra.db import create_database_engine
from shared.infra.dev_keys import DEV_ISSUER
from tests.integration.test_command_api import assert_problem, order_body
from tests.support.auth import bearer

EVERY = 10
# The customer opens and reads its own account; the payment gateway deposits into it.
CUSTOMER = Principal("user-c-1", DEV_ISSUER, frozenset({ACCOUNTS_WRITE, READ_OWN}), "c-1")
GATEWAY = Principal("gateway", DEV_ISSUER, frozenset({ACCOUNTS_DEPOSIT}))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'events.db'}")
    store = EventStore(engine)
    store.create_schema()
    yield store
    engine.dispose()


def deposits(service: AccountService, count: int) -> None:
    service.open_account(acc.OpenAccount("c-1"), CommandContext(principal=CUSTOMER))
    for n in range(count):
        service.deposit(acc.DepositFunds("c-1", 100 + n), CommandContext(principal=GATEWAY))


def snapshot_version(store: EventStore) -> int | None:
    snapshot = store.load_snapshot("account:c-1")
    return snapshot.version if snapshot else None


def test_a_snapshot_is_taken_every_n_events_and_load_uses_it(store: EventStore) -> None:
    service = AccountService(store, snapshot_every=EVERY)
    deposits(service, 24)  # versions 1..25
    assert snapshot_version(store) == 20
    with_snapshot = service.account_state("c-1", CUSTOMER)
    without = AccountService(store, snapshot_every=0).account_state("c-1", CUSTOMER)
    assert with_snapshot == without
    assert with_snapshot.version == 25
    assert with_snapshot.balance_cents == sum(100 + n for n in range(24))


def test_load_reads_only_the_events_after_the_snapshot(store: EventStore) -> None:
    service = AccountService(store, snapshot_every=EVERY)
    deposits(service, 24)
    # Tamper with the snapshot: if load folded all events, this would not show.
    with store.engine.begin() as conn:
        snapshot = conn.execute(select(snapshots_table.c.state)).scalar_one()
        snapshot["balance_cents"] += 1_000_000
        conn.execute(update(snapshots_table).values(state=snapshot))
    tampered = service.account_state("c-1", CUSTOMER).balance_cents
    assert tampered == 1_000_000 + sum(100 + n for n in range(24))


def test_a_snapshot_in_an_old_format_is_ignored(store: EventStore) -> None:
    service = AccountService(store, snapshot_every=EVERY)
    deposits(service, 12)
    with store.engine.begin() as conn:
        conn.execute(update(snapshots_table).values(state_format="account/0", state={"x": 1}))
    assert service.account_state("c-1", CUSTOMER).balance_cents == sum(100 + n for n in range(12))


def test_an_older_snapshot_never_replaces_a_newer_one(store: EventStore) -> None:
    service = AccountService(store, snapshot_every=EVERY)
    deposits(service, 24)
    state = service.account_state("c-1", CUSTOMER)
    older = service.accounts.codec.to_json(state) | {"version": 10}
    store.save_snapshot(Snapshot("account:c-1", 10, "account/1", older))
    assert snapshot_version(store) == 20


# --- temporal queries over HTTP -------------------------------------------------------------


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    settings = {"DATA_DIR": str(tmp_path), "SNAPSHOT_EVERY": "2", "AUTH_MODE": "dev"}
    app: Flask = create_app(Settings.from_env(settings))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(tmp_path)["Authorization"]
    return client


def test_order_as_of_a_version_and_a_time(client: FlaskClient) -> None:
    client.post("/accounts", json={"customer_id": "c-1", "initial_deposit": "100.00"})
    client.post("/orders", json=order_body())
    placed_at = client.get("/orders/o-1/events").get_json()["events"][0]["occurred_at"]
    time.sleep(0.01)
    client.post("/orders/o-1/status", json={"status": "PAID"})
    client.post("/orders/o-1/status", json={"status": "SHIPPED"})

    assert client.get("/orders/o-1").get_json()["status"] == "SHIPPED"
    at_1 = client.get("/orders/o-1?as_of_version=1")
    assert at_1.status_code == 200
    assert (at_1.get_json()["status"], at_1.get_json()["version"]) == ("PLACED", 1)
    assert at_1.headers["ETag"] == '"1"'
    assert client.get("/orders/o-1?as_of_version=2").get_json()["status"] == "PAID"
    at_time = client.get("/orders/o-1", query_string={"as_of": placed_at}).get_json()
    assert (at_time["status"], at_time["version"]) == ("PLACED", 1)
    # Both together are both bounds: the newest state within the version and the time.
    now = format_timestamp(datetime.now(UTC))
    both = {"as_of_version": 2, "as_of": now}
    assert client.get("/orders/o-1", query_string=both).get_json()["version"] == 2
    both = {"as_of_version": 3, "as_of": placed_at}
    assert client.get("/orders/o-1", query_string=both).get_json()["version"] == 1


def test_account_as_of_a_version(client: FlaskClient) -> None:
    client.post("/accounts", json={"customer_id": "c-1", "initial_deposit": "100.00"})
    client.post("/accounts/c-1/deposits", json={"amount": "5.00"})
    client.post("/accounts/c-1/deposits", json={"amount": "6.00"})
    assert client.get("/accounts/c-1").get_json()["balance"] == "111.00"
    assert client.get("/accounts/c-1?as_of_version=3").get_json()["balance"] == "105.00"
    assert client.get("/accounts/c-1?as_of_version=1").get_json()["balance_cents"] == 0


def test_temporal_query_errors(client: FlaskClient) -> None:
    client.post("/orders", json=order_body())
    events = client.get("/orders/o-1/events").get_json()["events"]
    before = format_timestamp(parse_timestamp(events[0]["occurred_at"]) - timedelta(seconds=1))
    body = assert_problem(client.get("/orders/o-1", query_string={"as_of": before}), 404)
    assert body["current_version"] == 1
    assert_problem(client.get("/orders/o-1?as_of_version=2"), 404)
    assert_problem(client.get("/orders/o-1?as_of_version=0"), 400, "as_of_version")
    assert_problem(client.get("/orders/o-1?as_of=yesterday"), 400, "as_of")
    assert_problem(client.get("/orders/o-1?as_of=2026-01-01T00:00:00"), 400, "as_of")
    both = {"as_of_version": 1, "as_of": before}
    assert (
        "version 1 and "
        in assert_problem(client.get("/orders/o-1", query_string=both), 404)["detail"]
    )
    assert_problem(client.get("/orders/nope?as_of_version=1"), 404)
