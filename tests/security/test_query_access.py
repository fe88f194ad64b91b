"""The query API's authorization, in process over a real SQLite read model: read:own sees its
customer's data only, and another customer's resource is exactly a missing one; read:all sees
all; other scopes read nothing; ?min_version waits are capped. Reads change no row.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from query_service.http.app import create_app
from shared.contract.envelope import EventEnvelope
from shared.contract.principal import ORDERS_WRITE, READ_ALL, READ_OWN
from shared.infra.dev_keys import DEV_ISSUER
from tests.integration.query_api_support import authed_settings, client_with_token
from tests.integration.query_support import (
    OrderEventLog,
    new_read_model,
    project_directly,
    view_rows,
)
from tests.support.processes import wait_until

MAX_WAIT_MS = 300
ALICE = {"sub": "alice", "iss": DEV_ISSUER, "customer_id": "c-a", "client_id": "web-shop"}
STAFF = {"sub": "support-1", "iss": DEV_ISSUER, "client_id": "console", "jti": "token-9"}
# Bob's resources, each of which Alice must find exactly as she finds a missing one.
BOBS = [
    "/orders/o-b1", "/orders/o-b1?min_version=1", "/orders/o-b1/history", "/customers/c-b",
    "/customers/c-b/orders", "/accounts/c-b", "/accounts/c-b?min_version=1",
    "/accounts/c-b/statement",
]  # fmt: skip
READS = ["/orders", *BOBS, "/products/top", "/products/apple/sales"]


BOB = {"sub": "bob", "customer_id": "c-b"}


def _log() -> OrderEventLog:
    """Alice (c-a) and Bob (c-b) each have an account and orders; staff marked one paid."""
    log = OrderEventLog()
    log.open_account("c-a", initial_deposit_cents=5000)
    log.open_account("c-b", initial_deposit_cents=700)
    log.place("o-a1", "c-a", [("apple", 2, 250)])
    log.place("o-a2", "c-a", [("pear", 1, 1000)])
    log.change("o-a2", "PAID")
    log.place("o-b1", "c-b", [("apple", 1, 250)])
    log.envelopes = [_with_principal(envelope) for envelope in log.envelopes]
    return log


def _with_principal(envelope: EventEnvelope) -> EventEnvelope:
    """The metadata the command side stores: staff changed statuses, customers did the rest."""
    if envelope.type == "OrderStatusChanged":
        who = STAFF
    else:
        who = ALICE if envelope.data["customer_id"] == "c-a" else BOB
    return replace(envelope, metadata={**envelope.metadata, "principal": who})


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("query-access")


@pytest.fixture(scope="module")
def engine(data_dir: Path) -> Iterator[Engine]:
    engine = new_read_model(f"sqlite:///{data_dir / 'read.db'}")
    project_directly(engine, _log().envelopes)
    yield engine
    engine.dispose()


def _app(data_dir: Path, url: str, max_wait_ms: int = MAX_WAIT_MS) -> Flask:
    return create_app(authed_settings(url, data_dir, read_your_writes_max_wait_ms=max_wait_ms))


@pytest.fixture(scope="module")
def app(data_dir: Path, engine: Engine) -> Flask:
    return _app(data_dir, engine.url.render_as_string(hide_password=False))


@pytest.fixture(scope="module")
def empty_app(data_dir: Path) -> Flask:
    """The same API over an empty read model: what a truly missing resource answers."""
    return _app(data_dir, f"sqlite:///{data_dir / 'empty.db'}")


def alice(app: Flask) -> FlaskClient:
    return client_with_token(app, "alice", [READ_OWN], customer_id="c-a")


def bob(app: Flask) -> FlaskClient:
    return client_with_token(app, "bob", [READ_OWN], customer_id="c-b")


@pytest.fixture(autouse=True)
def _reads_change_nothing(engine: Engine) -> Iterator[None]:
    before = view_rows(engine)
    yield
    assert view_rows(engine) == before


def _ok(response: TestResponse) -> Any:
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


# Ids each request gets of its own, whatever resource it asked for.
_PER_REQUEST = {"X-Correlation-ID", "traceparent"}


def _headers(response: TestResponse) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in _PER_REQUEST}


def _assert_insufficient_scope(response: TestResponse, scopes: list[str]) -> None:
    assert response.status_code == 403, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    assert response.get_json()["required_scopes"] == scopes


def test_read_own_lists_only_the_callers_orders(app: Flask) -> None:
    client = alice(app)
    mine = ["o-a2", "o-a1"]  # newest first
    assert [o["order_id"] for o in _ok(client.get("/orders"))["orders"]] == mine
    assert [o["order_id"] for o in _ok(client.get("/orders?customer_id=c-a"))["orders"]] == mine
    paid = _ok(client.get("/orders?status=PAID"))["orders"]
    assert [o["order_id"] for o in paid] == ["o-a2"]
    first = _ok(client.get("/orders?limit=1"))
    rest = _ok(client.get(f"/orders?limit=1&cursor={first['next_cursor']}"))
    assert [o["order_id"] for o in first["orders"] + rest["orders"]] == mine
    assert rest["next_cursor"] is None


def test_read_own_naming_another_customer_is_403(app: Flask) -> None:
    _assert_insufficient_scope(alice(app).get("/orders?customer_id=c-b"), [READ_ALL])


def test_read_own_without_a_customer_claim_lists_nothing_and_finds_nothing(app: Flask) -> None:
    client = client_with_token(app, "nobody", [READ_OWN])
    _assert_insufficient_scope(client.get("/orders"), [READ_ALL])
    assert client.get("/orders/o-a1").status_code == 404
    assert client.get("/accounts/c-a").status_code == 404


@pytest.mark.parametrize("url", BOBS)
def test_another_customers_resource_is_exactly_a_missing_one(
    app: Flask, empty_app: Flask, url: str
) -> None:
    started = time.monotonic()
    hidden = alice(app).get(url)
    hidden_s = time.monotonic() - started
    missing = alice(empty_app).get(url)

    assert hidden.status_code == missing.status_code == 404
    assert hidden.get_data() == missing.get_data()
    assert _headers(hidden) == _headers(missing)
    if "min_version" in url:  # it waited as long as for a missing one: time tells nothing
        assert hidden.headers["X-Projection-Up-To-Date"] == "false"
        assert hidden_s >= MAX_WAIT_MS / 1000
    # Its owner reads it, waits included; so does read:all.
    assert _ok(bob(app).get(url))
    assert _ok(client_with_token(app).get(url))


def test_an_owner_reads_their_own_resources(app: Flask) -> None:
    client = alice(app)
    assert _ok(client.get("/orders/o-a2?min_version=2"))["status"] == "PAID"
    assert client.get("/orders/o-a2?min_version=2").headers["X-Projection-Up-To-Date"] == "true"
    assert _ok(client.get("/customers/c-a"))["order_count"] == 2
    assert [o["order_id"] for o in _ok(client.get("/customers/c-a/orders"))["orders"]] == [
        "o-a2",
        "o-a1",
    ]
    assert _ok(client.get("/accounts/c-a?min_version=2"))["balance_cents"] == 5000
    assert [line["kind"] for line in _ok(client.get("/accounts/c-a/statement"))["lines"]] == [
        "DEPOSIT"
    ]


def test_the_history_names_who_did_each_step_without_token_ids(app: Flask) -> None:
    body = _ok(alice(app).get("/orders/o-a2/history"))
    assert [step["by"] for step in body["history"]] == [
        {"sub": "alice", "iss": DEV_ISSUER, "customer_id": "c-a", "client_id": "web-shop"},
        {"sub": "support-1", "iss": DEV_ISSUER, "customer_id": None, "client_id": "console"},
    ]
    assert "token-9" not in str(body)


def test_read_all_sees_everyone(app: Flask) -> None:
    client = client_with_token(app, "support-1", [READ_ALL])
    listed = _ok(client.get("/orders"))["orders"]
    assert sorted(o["order_id"] for o in listed) == ["o-a1", "o-a2", "o-b1"]
    assert [o["order_id"] for o in _ok(client.get("/orders?customer_id=c-b"))["orders"]] == ["o-b1"]
    for url in READS:
        _ok(client.get(url))


@pytest.mark.parametrize("url", READS)
def test_a_write_only_token_reads_nothing(app: Flask, url: str) -> None:
    client = client_with_token(app, "alice", [ORDERS_WRITE], customer_id="c-a")
    scopes = [READ_ALL] if url.startswith("/products") else [READ_ALL, READ_OWN]
    _assert_insufficient_scope(client.get(url), scopes)


@pytest.mark.parametrize("url", ["/products/top", "/products/apple/sales"])
def test_product_figures_need_read_all(app: Flask, url: str) -> None:
    _assert_insufficient_scope(alice(app).get(url), [READ_ALL])


def test_without_a_token_only_health_answers(app: Flask) -> None:
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    for url in ("/orders", "/orders/o-a1", "/projector/status"):
        response = client.get(url)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")


# --- read-your-writes: waiting for an owner only, and a cap on waiters ---------------------


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[tuple[Flask, Engine, OrderEventLog]]:
    """An app over a read model of its own, for tests that add events."""
    log = OrderEventLog()
    log.place("o-a1", "c-a", [("apple", 1, 250)])
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    project_directly(engine, log.envelopes)
    yield _app(tmp_path, str(engine.url), max_wait_ms=2000), engine, log
    engine.dispose()


def test_a_wait_answers_its_owner_when_the_order_arrives(fresh: Any) -> None:
    app, engine, log = fresh
    placed = log.place("o-a2", "c-a", [("pear", 1, 100)])
    timer = threading.Timer(0.2, project_directly, args=(engine, [placed]))
    timer.start()
    try:
        response = alice(app).get("/orders/o-a2?min_version=1")
    finally:
        timer.join()
    assert _ok(response)["customer_id"] == "c-a"
    assert response.headers["X-Projection-Up-To-Date"] == "true"


def test_a_flood_of_waiters_gets_429_with_retry_after(
    fresh: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, engine, _ = fresh
    settings = authed_settings(
        str(engine.url), tmp_path, read_your_writes_max_wait_ms=2000, read_your_writes_max_waiters=1
    )
    app = create_app(settings)
    slots = app.extensions["read_views"].waiter_slots
    answers: list[int] = []
    waiter = threading.Thread(
        target=lambda: answers.append(alice(app).get("/orders/o-a9?min_version=1").status_code)
    )
    waiter.start()
    try:
        wait_until(lambda: slots.taken == 1, 10, "the first request never waited")
        refused = alice(app).get("/accounts/c-a?min_version=1")
        # A read that need not wait takes no slot.
        assert alice(app).get("/orders/o-a1?min_version=1").status_code == 200
    finally:
        waiter.join()

    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json()["type"].endswith("too-many-waiters")
    assert answers == [404]
    assert slots.taken == 0
    assert alice(app).get("/orders/o-a9?min_version=1").status_code == 404  # free again
