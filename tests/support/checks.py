"""The checks a system test ends with: every query view agrees with the reference model, and
every command the API acknowledged is in the event log and projected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import requests

from shared.contract.envelope import EventEnvelope
from tests.support.auth import api_session
from tests.support.reference_model import ExpectedViews
from tests.support.workload import Acknowledged

STATUSES = ("PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")


def assert_views_match(query_url: str, expected: ExpectedViews, headers: Mapping[str, str]) -> None:
    """Every GET view of the query API agrees with the fold of the event log (read as admin)."""
    session = api_session(headers)

    def get(path: str) -> Any:
        response = session.get(query_url + path, timeout=10)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    for order_id, order in expected.orders.items():
        body = get(f"/orders/{order_id}")
        got = {k: body[k] for k in ("customer_id", "status", "version", "total_cents")}
        got |= {k: body[k] for k in ("line_count", "total_quantity")}
        want = {
            "customer_id": order.customer_id,
            "status": order.status,
            "version": order.version,
            "total_cents": order.total_cents,
            "line_count": order.line_count,
            "total_quantity": order.total_quantity,
        }
        assert got == want, f"order {order_id}"
        assert [(line["product_id"], line["quantity"]) for line in body["lines"]] == [
            (line["product_id"], line["quantity"]) for line in order.lines
        ]
        history = get(f"/orders/{order_id}/history")["history"]
        assert [(h["version"], h["type"]) for h in history] == list(
            enumerate(order.event_types, start=1)
        ), f"history of {order_id}"

    for customer_id, customer in expected.customers.items():
        body = get(f"/customers/{customer_id}")
        assert body["order_count"] == customer["order_count"], customer_id
        assert body["total_cents"] == customer["total_cents"], customer_id
        assert body["orders_by_status"] == {s: customer["by_status"][s] for s in STATUSES}
        listed = _walk(session, f"{query_url}/customers/{customer_id}/orders?limit=7")
        mine = {oid for oid, o in expected.orders.items() if o.customer_id == customer_id}
        assert sorted(listed) == sorted(mine), f"orders listed for {customer_id}"

    for product_id, sales in expected.products.items():
        body = get(f"/products/{product_id}/sales")
        got_sales = {k: body[k] for k in ("units_sold", "amount_cents", "order_count")}
        assert got_sales == sales, f"sales of {product_id}"
    top = get(f"/products/top?limit={len(expected.products)}&by=amount")["products"]
    assert {p["product_id"]: p["amount_cents"] for p in top} == {
        k: v["amount_cents"] for k, v in expected.products.items()
    }

    for customer_id, account in expected.accounts.items():
        body = get(f"/accounts/{customer_id}")
        got_account = {k: body[k] for k in ("version", "balance_cents", "deposited_cents")}
        got_account |= {k: body[k] for k in ("debited_cents", "credited_cents")}
        assert got_account == {
            "version": account.version,
            "balance_cents": account.balance_cents,
            "deposited_cents": account.deposited_cents,
            "debited_cents": account.debited_cents,
            "credited_cents": account.credited_cents,
        }, f"account of {customer_id}"
        lines = _walk_statement(session, f"{query_url}/accounts/{customer_id}/statement?limit=9")
        assert lines == account.statement, f"statement of {customer_id}"
        if customer_id in expected.customers:
            shown = get(f"/customers/{customer_id}")["account"]
            assert shown["balance_cents"] == account.balance_cents

    for status in STATUSES:
        listed = _walk(session, f"{query_url}/orders?status={status}&limit=500")
        want_ids = [oid for oid, o in expected.orders.items() if o.status == status]
        assert sorted(listed) == sorted(want_ids), f"orders listed as {status}"


def _walk_statement(
    session: requests.Session, url: str
) -> list[tuple[int, str, int, int, str | None]]:
    """Every statement line, following Link rel=next, as ExpectedAccount.statement has them."""
    lines = []
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, timeout=10)
        assert response.status_code == 200, response.text
        for line in response.json()["lines"]:
            lines.append(
                (
                    line["version"],
                    line["kind"],
                    line["amount_cents"],
                    line["balance_cents"],
                    line["order_id"],
                )
            )
        link = response.headers.get("Link")
        next_url = link[1 : link.index(">")] if link else None
    return lines


def _walk(session: requests.Session, url: str) -> list[str]:
    """Follow the Link rel=next headers; all order ids listed, checking none repeats."""
    seen: list[str] = []
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, timeout=10)
        assert response.status_code == 200, response.text
        seen += [order["order_id"] for order in response.json()["orders"]]
        link = response.headers.get("Link")
        next_url = link[1 : link.index(">")] if link else None
    assert len(seen) == len(set(seen)), f"an order was listed twice walking {url}"
    return seen


def assert_acknowledged_present(
    acknowledged: Iterable[Acknowledged], log: Iterable[EventEnvelope], projected: dict[str, int]
) -> int:
    """Each acknowledged command's event is in the log and projected; the number checked."""
    in_log = {(e.stream_id, e.version) for e in log}
    checked = 0
    for ack in acknowledged:
        assert (ack.stream_id, ack.version) in in_log, f"acknowledged but not in the log: {ack}"
        assert projected.get(ack.stream_id, 0) >= ack.version, f"acknowledged, not projected: {ack}"
        checked += 1
    return checked
