"""Single resources of the query API (orders, history, customers, products), health,
read-your-writes waiting and database failures.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, text

from shared.contract.envelope import format_timestamp
from tests.integration.query_api_support import (
    FINAL,
    LOG,
    NEWEST_FIRST,
    PLACED,
    api_client,
    authed_settings,
    get,
    query_client,
    status_of,
    walk,
)
from tests.integration.query_support import (
    OrderEventLog,
    ProjectorThread,
    new_read_model,
    produce,
    project_directly,
    wait_consumed,
)


@pytest.fixture(scope="module")
def client(filled: Engine, tmp_path_factory: pytest.TempPathFactory) -> FlaskClient:
    return api_client(filled, tmp_path_factory.mktemp("auth"))


def test_an_order_with_lines_amounts_and_version(client: FlaskClient) -> None:
    response = client.get("/orders/o-006")
    body = response.get_json()
    assert response.headers["ETag"] == '"3"'
    assert "X-Projection-Up-To-Date" not in response.headers
    assert body == {
        "order_id": "o-006", "customer_id": "c-0", "status": "SHIPPED", "version": 3,
        "line_count": 2, "total_quantity": 2, "total_cents": 299, "total": "2.99",
        "created_at": format_timestamp(PLACED["o-006"].occurred_at),
        "updated_at": format_timestamp(FINAL["o-006"].occurred_at),
        "lines": [
            {"line_no": 1, "product_id": "p-2", "quantity": 1, "unit_price_cents": 200,
             "unit_price": "2.00", "amount_cents": 200, "amount": "2.00"},
            {"line_no": 2, "product_id": "p-gift", "quantity": 1, "unit_price_cents": 99,
             "unit_price": "0.99", "amount_cents": 99, "amount": "0.99"},
        ],
    }  # fmt: skip


def test_history_lists_every_applied_event(client: FlaskClient) -> None:
    body = get(client, "/orders/o-003/history")
    assert body["order_id"] == "o-003" and body["version"] == 3
    assert [(h["version"], h["type"], h["summary"]) for h in body["history"]] == [
        (1, "OrderPlaced", "Placed by c-0: 2 line(s), 2 item(s), total 4.99"),
        (2, "OrderStatusChanged", "PLACED -> PAID"),
        (3, "OrderCancelled", "Cancelled (was PAID): customer asked"),
    ]
    assert [h["event_id"] for h in body["history"]] == [e.event_id for e in LOG.stream("o-003")]
    # LOG's events predate principals in metadata: nobody is named.
    assert [h["by"] for h in body["history"]] == [None, None, None]


def test_customer_summary_and_orders(client: FlaskClient) -> None:
    mine = [oid for oid in NEWEST_FIRST if PLACED[oid].data["customer_id"] == "c-1"]
    live = [oid for oid in mine if status_of(oid) != "CANCELLED"]
    body = get(client, "/customers/c-1")
    assert body["order_count"] == len(mine)
    assert body["total_cents"] == sum(PLACED[oid].data["total_cents"] for oid in live)
    assert body["total"] == f"{body['total_cents'] / 100:.2f}"
    assert body["orders_by_status"] == {
        s: sum(status_of(oid) == s for oid in mine)
        for s in ("PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")
    }
    assert walk(client, "/customers/c-1/orders?limit=3") == mine
    paid = [oid for oid in mine if status_of(oid) == "PAID"]
    assert walk(client, "/customers/c-1/orders?status=PAID&limit=2") == paid


def test_product_sales_exclude_cancelled_orders(client: FlaskClient) -> None:
    def expected(product: str) -> tuple[int, int, int]:
        units = amount = orders = 0
        for oid, placed in PLACED.items():
            lines = [ln for ln in placed.data["lines"] if ln["product_id"] == product]
            if lines and status_of(oid) != "CANCELLED":
                units += sum(ln["quantity"] for ln in lines)
                amount += sum(ln["amount_cents"] for ln in lines)
                orders += 1
        return units, amount, orders

    body = get(client, "/products/p-1/sales")
    assert (body["units_sold"], body["amount_cents"], body["order_count"]) == expected("p-1")
    assert body["amount"] == f"{body['amount_cents'] / 100:.2f}"

    # Every order with p-3 is cancelled: it keeps a row of zeros and leaves the top lists.
    p3 = get(client, "/products/p-3/sales")
    assert (p3["units_sold"], p3["amount_cents"], p3["order_count"]) == (0, 0, 0)
    products = ["p-0", "p-1", "p-2", "p-gift"]
    by_units = sorted(products, key=lambda p: (-expected(p)[0], p))
    by_amount = sorted(products, key=lambda p: (-expected(p)[1], p))
    top = get(client, "/products/top?limit=3")
    assert top["by"] == "units"
    assert [p["product_id"] for p in top["products"]] == by_units[:3]
    top = get(client, "/products/top?by=amount")
    assert [p["product_id"] for p in top["products"]] == by_amount


def test_health_readiness_and_projector_status_say_when_kafka_is_unreachable(
    client: FlaskClient,
) -> None:
    assert get(client, "/healthz") == {"status": "ok"}
    assert get(client, "/readyz") == {"status": "ready", "database": "ok"}
    body = get(client, "/projector/status")
    assert body["parked_events"] == 0
    assert body["projector"]["kafka"]["reachable"] is False
    assert body["projector"]["total_lag"] is None


# --- read-your-writes (each test on its own read model, since they add events) -------------


@pytest.fixture
def small(tmp_path: Path) -> Iterator[tuple[FlaskClient, Engine, OrderEventLog]]:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 1, 250)])
    url = f"sqlite:///{tmp_path / 'read.db'}"
    engine = new_read_model(url)
    project_directly(engine, log.envelopes)
    client = query_client(authed_settings(url, tmp_path, read_your_writes_max_wait_ms=5000))
    yield client, engine, log
    engine.dispose()


def test_min_version_already_reached_answers_up_to_date(small: Any) -> None:
    client, _, _ = small
    response = client.get("/orders/o-1?min_version=1")
    assert response.status_code == 200
    assert response.headers["X-Projection-Up-To-Date"] == "true"


def test_min_version_waits_for_the_projection(small: Any) -> None:
    client, engine, log = small
    paid = log.change("o-1", "PAID")
    timer = threading.Timer(0.2, project_directly, args=(engine, [paid]))
    timer.start()
    try:
        response = client.get("/orders/o-1?min_version=2")
    finally:
        timer.join()
    assert response.headers["X-Projection-Up-To-Date"] == "true"
    assert response.get_json()["version"] == 2


def test_min_version_not_reached_in_time_answers_the_current_state(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'read.db'}"
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 1, 250)])
    project_directly(new_read_model(url), log.envelopes)
    client = query_client(authed_settings(url, tmp_path, read_your_writes_max_wait_ms=100))

    response = client.get("/orders/o-1?min_version=5")
    assert response.status_code == 200
    assert response.headers["X-Projection-Up-To-Date"] == "false"
    assert response.get_json()["version"] == 1

    missing = client.get("/orders/o-2?min_version=1")
    assert missing.status_code == 404
    assert missing.headers["X-Projection-Up-To-Date"] == "false"


def test_a_broken_database_is_a_503_not_a_500(small: Any) -> None:
    client, engine, _ = small
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE orders"))
        conn.execute(text("DROP TABLE projector_positions"))
    for url in ("/orders", "/orders/o-1", "/projector/status"):
        response = client.get(url)
        assert response.status_code == 503, url
        assert response.mimetype == "application/problem+json"


@pytest.mark.kafka
def test_projector_status_reports_positions_and_lag(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    for n in range(6):
        log.place(f"o-{n}", "c-1", [("apple", 1, 250)])
    url = f"sqlite:///{tmp_path / 'read.db'}"
    engine = new_read_model(url)
    settings = authed_settings(url, tmp_path, bootstrap=kafka_bootstrap, topic=kafka_topic)
    sent = produce(kafka_bootstrap, kafka_topic, log.envelopes[:4])
    with ProjectorThread(settings, engine):
        wait_consumed(engine, kafka_topic, sent)
    produce(kafka_bootstrap, kafka_topic, log.envelopes[4:])  # nobody consumes these

    body = get(query_client(settings), "/projector/status")

    projector = body["projector"]
    assert projector["kafka"] == {"reachable": True}
    assert projector["topic"] == kafka_topic
    assert [p["partition"] for p in projector["partitions"]] == [0, 1, 2]
    assert sum(p["end_offset"] for p in projector["partitions"]) == 6
    assert sum(p["next_offset"] or 0 for p in projector["partitions"]) == 4
    assert projector["total_lag"] == 2
