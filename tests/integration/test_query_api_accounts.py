"""Accounts in the query API: an account's totals, its statement (oldest first, cursor pages),
customers with and without an account, read-your-writes, and client errors, on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from shared.contract.envelope import format_timestamp
from tests.integration.query_api_support import (
    api_client,
    authed_settings,
    get,
    query_client,
)
from tests.integration.query_support import (
    OrderEventLog,
    new_read_model,
    project_directly,
)

BUSY_DEPOSITS = 120


def build_log() -> OrderEventLog:
    """c-rich pays for orders from an account (some refunded), c-cash has orders and no
    account, c-saver an account and no orders, c-empty a bare account, c-busy many deposits.
    """
    log = OrderEventLog()
    log.open_account("c-rich", initial_deposit_cents=50_000)
    log.open_account("c-saver")
    log.deposit("c-saver", 1234, deposit_id="dep-s1")
    for n in range(30):
        order_id = f"o-{n:03d}"
        customer_id = "c-rich" if n % 3 else "c-cash"
        log.place(order_id, customer_id, [(f"p-{n % 4}", 1 + n % 3, 125 + 10 * n)])
        if customer_id == "c-rich":
            log.pay(order_id)
            if n % 4 == 1:
                log.cancel(order_id, "changed my mind")
        elif n % 2:
            log.change(order_id, "PAID")
        if n % 5 == 0:
            log.deposit("c-rich", 1000 + n, deposit_id=f"dep-{n}")
    log.open_account("c-empty")
    log.open_account("c-busy")
    for n in range(BUSY_DEPOSITS):
        log.deposit("c-busy", 1 + n)
    return log


LOG = build_log()
KINDS = {"FundsDeposited": "DEPOSIT", "AccountDebited": "DEBIT", "AccountCredited": "CREDIT"}


def money(name: str, cents: int) -> dict[str, Any]:
    return {f"{name}_cents": cents, name: f"{Decimal(cents) / 100:.2f}"}


def expected_lines(customer_id: str) -> list[dict[str, Any]]:
    """The statement as the account's events in the log say it must be."""
    lines = []
    for e in LOG.stream(f"account:{customer_id}"):
        if e.type == "AccountOpened":
            continue
        sign = -1 if e.type == "AccountDebited" else 1
        lines.append(
            {
                "version": e.version,
                "occurred_at": format_timestamp(e.occurred_at),
                "kind": KINDS[e.type],
                **money("amount", sign * e.data["amount_cents"]),
                **money("balance", e.data["balance_cents"]),
                "order_id": e.data.get("order_id"),
                "deposit_id": e.data.get("deposit_id"),
            }
        )
    return lines


def total(customer_id: str, event_type: str) -> int:
    stream = LOG.stream(f"account:{customer_id}")
    return sum(e.data["amount_cents"] for e in stream if e.type == event_type)


@pytest.fixture(scope="module")
def read_model_log() -> OrderEventLog:
    """The accounts' log, for `filled` (tests/integration/conftest.py)."""
    return LOG


@pytest.fixture(scope="module")
def client(filled: Engine, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    return api_client(filled, tmp_path_factory.mktemp("auth"))


def walk_statement(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    """Follow next_cursor (and check the Link header) to the last page; every line."""
    lines: list[dict[str, Any]] = []
    while True:
        response = client.get(url)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["customer_id"] == url.split("/")[2]
        lines += body["lines"]
        if body["next_cursor"] is None:
            assert "Link" not in response.headers
            return lines
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"') and quote(body["next_cursor"]) in link
        url = link[1 : link.index(">")].removeprefix("http://localhost")


def test_an_account_with_its_totals_and_version(client: FlaskClient) -> None:
    stream = LOG.stream("account:c-rich")
    response = client.get("/accounts/c-rich")

    assert response.status_code == 200
    assert response.headers["ETag"] == f'"{stream[-1].version}"'
    assert "X-Projection-Up-To-Date" not in response.headers
    deposited = total("c-rich", "FundsDeposited")
    debited = total("c-rich", "AccountDebited")
    credited = total("c-rich", "AccountCredited")
    assert LOG.accounts["c-rich"].balance_cents == deposited - debited + credited
    assert response.get_json() == {
        "customer_id": "c-rich",
        **money("balance", deposited - debited + credited),
        **money("deposited", deposited),
        **money("debited", debited),
        **money("credited", credited),
        "version": stream[-1].version,
        "opened_at": format_timestamp(stream[0].occurred_at),
        "updated_at": format_timestamp(stream[-1].occurred_at),
    }
    assert credited > 0 and debited > credited


def test_a_bare_account_has_zero_totals_and_an_empty_statement(client: FlaskClient) -> None:
    body = get(client, "/accounts/c-empty")
    assert (body["balance_cents"], body["balance"], body["version"]) == (0, "0.00", 1)
    assert body["opened_at"] == body["updated_at"]
    assert get(client, "/accounts/c-empty/statement") == {
        "customer_id": "c-empty",
        "lines": [],
        "next_cursor": None,
    }


def test_the_statement_lists_every_money_event_oldest_first(client: FlaskClient) -> None:
    lines = walk_statement(client, "/accounts/c-rich/statement")
    assert lines == expected_lines("c-rich")
    assert {line["kind"] for line in lines} == {"DEPOSIT", "DEBIT", "CREDIT"}
    assert lines[-1]["balance_cents"] == LOG.accounts["c-rich"].balance_cents


@pytest.mark.parametrize("limit", [1, 2, 7, 32, 33, 34, 500])
def test_walking_statement_pages_gives_every_line_once(client: FlaskClient, limit: int) -> None:
    expected = expected_lines("c-rich")
    assert len(expected) == 33  # so the limits above end exactly on, before and after it
    assert walk_statement(client, f"/accounts/c-rich/statement?limit={limit}") == expected


def test_a_statement_cursor_is_a_version_whoever_made_it(client: FlaskClient) -> None:
    """What the OpenAPI document promises: every string of the cursor's shape is accepted."""
    expected = expected_lines("c-rich")
    assert get(client, "/accounts/c-rich/statement?cursor=0")["lines"] == expected
    after = expected[4]["version"]
    assert get(client, f"/accounts/c-rich/statement?cursor={after}")["lines"] == expected[5:]
    assert get(client, "/accounts/c-rich/statement?cursor=2147483647")["lines"] == []


def test_a_statement_page_holds_100_lines_unless_asked(client: FlaskClient) -> None:
    first = get(client, "/accounts/c-busy/statement")
    assert len(first["lines"]) == 100 and first["next_cursor"]
    rest = get(client, f"/accounts/c-busy/statement?cursor={first['next_cursor']}")
    assert len(rest["lines"]) == BUSY_DEPOSITS - 100 and rest["next_cursor"] is None
    assert first["lines"] + rest["lines"] == expected_lines("c-busy")


def test_a_customer_shows_their_account_balance_or_null(client: FlaskClient) -> None:
    rich = get(client, "/customers/c-rich")
    assert rich["account"] == money("balance", LOG.accounts["c-rich"].balance_cents)
    assert rich["order_count"] == 20
    cash = get(client, "/customers/c-cash")
    assert cash["account"] is None
    assert cash["order_count"] == 10


def test_a_customer_with_an_account_and_no_orders_is_found(client: FlaskClient) -> None:
    assert get(client, "/customers/c-saver") == {
        "customer_id": "c-saver",
        "order_count": 0,
        "orders_by_status": {
            status: 0 for status in ("PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")
        },
        **money("total", 0),
        "account": money("balance", 1234),
    }
    assert get(client, "/customers/c-saver/orders") == {"orders": [], "next_cursor": None}


@pytest.mark.parametrize(
    "url",
    [
        "/accounts/nobody",
        "/accounts/nobody/statement",
        "/accounts/c-cash",  # a customer with orders but no account
        "/accounts/c-cash/statement?limit=5",
        "/accounts/nobody?min_version=1",
        "/accounts/%E2%9C%93%00" + "x" * 3000,
        "/accounts/" + "x" * 65 + "/statement",
    ],
)
def test_an_unknown_account_is_a_404_problem(client: FlaskClient, url: str) -> None:
    body = get(client, url, 404)
    assert body["type"].endswith("account-not-found")
    assert "customer_id" in body


def test_a_customer_with_neither_orders_nor_account_is_still_a_404(client: FlaskClient) -> None:
    assert get(client, "/customers/nobody", 404)["type"].endswith("customer-not-found")
    assert get(client, "/customers/nobody/orders", 404)["type"].endswith("customer-not-found")


def _order_cursor(client: FlaskClient) -> str:
    token: str = get(client, "/orders?limit=1")["next_cursor"]
    return token


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=5&limit=6", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=", "cursor"),
        ("cursor=eyJ2IjoxLCJzdiI6M30", "cursor"),  # base64 JSON, the shape cursors once had
        ("cursor=-1", "cursor"),
        ("cursor=3.0", "cursor"),
        ("cursor=2147483648", "cursor"),  # past the 32-bit versions of the read model
        ("cursor=07", "cursor"),
        ("cursor=ORDER_CURSOR", "cursor"),
        ("after=3", "after"),
    ],
)
def test_invalid_statement_parameters_are_named_in_a_400(
    client: FlaskClient, query: str, parameter: str
) -> None:
    query = query.replace("ORDER_CURSOR", _order_cursor(client))
    body = get(client, f"/accounts/c-rich/statement?{query}", 400)
    assert list(body["errors"]) == [parameter]
    assert body["type"].endswith("invalid-query-parameter")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [("min_version=0", "min_version"), ("min_version=abc", "min_version"),
     ("min_version=99999999999", "min_version"), ("verbose=1", "verbose")],
)  # fmt: skip
def test_invalid_account_parameters_are_named_in_a_400(
    client: FlaskClient, query: str, parameter: str
) -> None:
    body = get(client, f"/accounts/c-rich?{query}", 400)
    assert list(body["errors"]) == [parameter]


def test_a_statement_cursor_is_not_an_order_cursor(client: FlaskClient) -> None:
    token = get(client, "/accounts/c-rich/statement?limit=1")["next_cursor"]
    assert list(get(client, f"/orders?cursor={token}", 400)["errors"]) == ["cursor"]


# --- read-your-writes (each test on its own read model, since they add events) -------------


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[FlaskClient, Engine, OrderEventLog]]:
    log = OrderEventLog()
    log.open_account("c-1", initial_deposit_cents=1000)
    url = f"sqlite:///{tmp_path / 'read.db'}"
    engine = new_read_model(url)
    project_directly(engine, log.envelopes)
    client = query_client(authed_settings(url, tmp_path, read_your_writes_max_wait_ms=5000))
    yield client, engine, log
    engine.dispose()


def test_min_version_already_reached_answers_up_to_date(small: Any) -> None:
    client, _, _ = small
    response = client.get("/accounts/c-1?min_version=2")
    assert response.status_code == 200
    assert response.headers["X-Projection-Up-To-Date"] == "true"
    assert response.headers["ETag"] == '"2"'


def test_min_version_waits_for_the_projection(small: Any) -> None:
    client, engine, log = small
    deposit = log.deposit("c-1", 250)
    timer = threading.Timer(0.2, project_directly, args=(engine, [deposit]))
    timer.start()
    try:
        response = client.get("/accounts/c-1?min_version=3")
    finally:
        timer.join()
    assert response.headers["X-Projection-Up-To-Date"] == "true"
    body = response.get_json()
    assert (body["version"], body["balance_cents"]) == (3, 1250)


def test_min_version_not_reached_in_time_answers_the_current_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'read.db'}"
    log = OrderEventLog()
    log.open_account("c-1")
    project_directly(new_read_model(url), log.envelopes)
    client = query_client(authed_settings(url, tmp_path, read_your_writes_max_wait_ms=100))

    response = client.get("/accounts/c-1?min_version=5")
    assert response.status_code == 200
    assert response.headers["X-Projection-Up-To-Date"] == "false"
    assert response.get_json()["version"] == 1

    missing = client.get("/accounts/c-2?min_version=1")
    assert missing.status_code == 404
    assert missing.headers["X-Projection-Up-To-Date"] == "false"
