"""Order listings of the query API: newest first, filters, cursor pagination, bad parameters
and unknown routes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from shared.contract.envelope import format_timestamp
from tests.integration.query_api_support import (
    NEWEST_FIRST,
    ORDERS,
    PLACED,
    api_client,
    cursor_at,
    get,
    status_of,
    walk,
)
from tests.integration.query_support import (
    T0,
)


@pytest.fixture(scope="module")
def client(filled: Engine, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    return api_client(filled, tmp_path_factory.mktemp("auth"))


def test_orders_are_listed_newest_first_with_a_cursor(client: FlaskClient) -> None:
    body = get(client, "/orders")
    assert [o["order_id"] for o in body["orders"]] == NEWEST_FIRST[:ORDERS]  # limit 50 > 45
    assert body["next_cursor"] is None
    first = get(client, "/orders?limit=5")
    assert [o["order_id"] for o in first["orders"]] == NEWEST_FIRST[:5]
    assert first["next_cursor"]


def test_a_cursor_of_the_right_shape_is_a_position_whoever_made_it(client: FlaskClient) -> None:
    """What the OpenAPI document promises: every string of the cursor's shape is accepted."""
    after_third = get(client, f"/orders?limit=3&cursor={cursor_at(NEWEST_FIRST[2])}")
    assert [o["order_id"] for o in after_third["orders"]] == NEWEST_FIRST[3:6]
    assert get(client, "/orders?cursor=0~o-1") == {"orders": [], "next_cursor": None}
    everything = get(client, "/orders?cursor=9999999999999999~zzz")["orders"]
    assert [o["order_id"] for o in everything] == NEWEST_FIRST[:ORDERS]


@pytest.mark.parametrize("limit", [1, 2, 7, 44, 45, 500])
def test_walking_all_pages_gives_every_order_once(client: FlaskClient, limit: int) -> None:
    assert walk(client, f"/orders?limit={limit}") == NEWEST_FIRST


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=PAID", lambda oid: status_of(oid) == "PAID"),
        ("status=cancelled", lambda oid: status_of(oid) == "CANCELLED"),
        ("customer_id=c-1", lambda oid: PLACED[oid].data["customer_id"] == "c-1"),
        (
            "customer_id=c-2&status=SHIPPED",
            lambda oid: PLACED[oid].data["customer_id"] == "c-2" and status_of(oid) == "SHIPPED",
        ),
        (
            f"created_after={format_timestamp(T0 + timedelta(seconds=10))}"
            f"&created_before={quote(format_timestamp(T0 + timedelta(seconds=20)))}",
            lambda oid: (
                T0 + timedelta(seconds=10) <= PLACED[oid].occurred_at < T0 + timedelta(seconds=20)
            ),
        ),
        ("customer_id=nobody", lambda oid: False),
    ],
)
def test_filters_combine_with_pagination(client: FlaskClient, query: str, expected: Any) -> None:
    wanted = [oid for oid in NEWEST_FIRST if expected(oid)]
    assert walk(client, f"/orders?{query}&limit=4") == wanted


def test_timezone_offsets_are_honoured_even_when_the_plus_was_not_encoded(
    client: FlaskClient,
) -> None:
    cut = T0 + timedelta(seconds=30)
    in_utc = walk(client, f"/orders?created_after={quote(format_timestamp(cut))}")
    shifted = (cut + timedelta(hours=2)).replace(tzinfo=None).isoformat() + "+02:00"
    assert walk(client, f"/orders?created_after={quote(shifted)}") == in_utc
    assert walk(client, f"/orders?created_after={shifted}") == in_utc  # '+' read as ' '
    assert in_utc == [oid for oid in NEWEST_FIRST if PLACED[oid].occurred_at >= cut]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("status=LOST", "status"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("created_after=2025-03-01T09:00:00", "created_after"),
        ("created_before=yesterday", "created_before"),
        ("created_after=0001-01-01T00:00:00%2B01:00", "created_after"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=eyJ2IjoyfQ", "cursor"),  # base64 JSON, the shape cursors once had
        ("cursor=", "cursor"),
        ("cursor=12345678901234567~o-1", "cursor"),  # past 16 digits of microseconds
        ("cursor=-1~o-1", "cursor"),
        ("cursor=1740819600000000~o%00", "cursor"),
        ("cursor=1740819600000000~", "cursor"),
        ("cursor=1740819600000000", "cursor"),  # a statement cursor
        ("customer_id=" + "x" * 65, "customer_id"),
        ("colour=red", "colour"),
        ("status=PAID&status=SHIPPED", "status"),
    ],
)
def test_invalid_list_parameters_are_named_in_a_400(
    client: FlaskClient, query: str, parameter: str
) -> None:
    body = get(client, f"/orders?{query}", 400)
    assert list(body["errors"]) == [parameter]
    assert parameter in body["detail"]
    assert body["type"].endswith("invalid-query-parameter")


@pytest.mark.parametrize(
    ("url", "status", "slug"),
    [
        ("/orders/nope", 404, "order-not-found"),
        ("/orders/nope/history", 404, "order-not-found"),
        ("/customers/nobody", 404, "customer-not-found"),
        ("/customers/nobody/orders", 404, "customer-not-found"),
        ("/products/nothing/sales", 404, "product-not-found"),
        ("/orders/o-001?min_version=0", 400, "invalid-query-parameter"),
        ("/orders/o-001?min_version=abc", 400, "invalid-query-parameter"),
        ("/orders/o-001?min_version=99999999999", 400, "invalid-query-parameter"),
        ("/products/top?by=price", 400, "invalid-query-parameter"),
        ("/products/top?limit=101", 400, "invalid-query-parameter"),
        ("/customers/c-1?verbose=1", 400, "invalid-query-parameter"),
        ("/customers/c-1/orders?customer_id=c-2", 400, "invalid-query-parameter"),
        ("/no/such/route", 404, "not-found"),
        ("/orders/%E2%9C%93%00" + "x" * 3000, 404, "order-not-found"),
    ],
)
def test_client_errors_are_problem_json(
    client: FlaskClient, url: str, status: int, slug: str
) -> None:
    body = get(client, url, status)
    assert body["type"].endswith(slug)
    assert body["status"] == status


def test_wrong_methods_are_405_problems(client: FlaskClient) -> None:
    response = client.post("/orders", json={})
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert "GET" in response.headers["Allow"]
