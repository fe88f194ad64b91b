"""The command API over Flask's test client, on a real SQLite event log."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from command_service.adapters.event_store import EventStore, NewEvent

PROBLEM = "application/problem+json"


def order_body(order_id: str | None = "o-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "customer_id": "c-1",
        "lines": [
            {"product_id": "p-1", "quantity": 2, "unit_price": "12.50"},
            {"product_id": "p-2", "quantity": 1, "unit_price": 0.99},
        ],
    }
    if order_id is not None:
        body["order_id"] = order_id
    body.update(overrides)
    return body


def place(client: FlaskClient, order_id: str = "o-1") -> None:
    assert client.post("/orders", json=order_body(order_id)).status_code == 201


def fund(client: FlaskClient, customer_id: str = "c-1", amount: str = "1000.00") -> None:
    """Open the customer's account with a deposit, so its orders can be paid."""
    body = {"customer_id": customer_id, "initial_deposit": amount}
    assert client.post("/accounts", json=body).status_code == 201


def assert_problem(response: Any, status: int, *fields: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"].startswith("urn:")
    for field in fields:
        assert field in body["errors"], body
    return body


def test_place_order(client: FlaskClient, store: EventStore) -> None:
    response = client.post("/orders", json=order_body())
    assert response.status_code == 201
    assert response.get_json() == {
        "order_id": "o-1",
        "version": 1,
        "position": 1,
        "status": "PLACED",
    }
    assert response.headers["Location"] == "/orders/o-1"
    assert response.headers["ETag"] == '"1"'
    [stored] = store.load_stream("o-1")
    assert stored.type == "OrderPlaced"
    assert stored.data["total_cents"] == 2 * 1250 + 99
    assert stored.metadata["correlation_id"] == response.headers["X-Correlation-ID"]
    assert stored.metadata["causation_id"]


def test_place_order_generates_an_id_when_none_given(client: FlaskClient) -> None:
    response = client.post("/orders", json=order_body(None))
    assert response.status_code == 201
    order_id = response.get_json()["order_id"]
    assert len(order_id) == 36
    assert client.get(f"/orders/{order_id}").get_json()["status"] == "PLACED"


def test_correlation_id_is_taken_from_the_request(client: FlaskClient, store: EventStore) -> None:
    response = client.post("/orders", json=order_body(), headers={"X-Request-ID": "req-42"})
    assert response.headers["X-Correlation-ID"] == "req-42"
    assert store.load_stream("o-1")[0].metadata["correlation_id"] == "req-42"


def test_same_order_id_same_body_is_a_safe_retry(client: FlaskClient, store: EventStore) -> None:
    first = client.post("/orders", json=order_body())
    again = client.post("/orders", json=order_body())
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert store.head_position() == 1


def test_same_order_id_different_body_is_409(client: FlaskClient, store: EventStore) -> None:
    place(client)
    response = client.post("/orders", json=order_body(customer_id="c-2"))
    body = assert_problem(response, 409)
    assert body["current_version"] == 1
    assert store.head_position() == 1


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"lines": []}, ["customer_id", "lines"]),
        (order_body(customer_id="bad id"), ["customer_id"]),
        (order_body(order_id="x" * 65), ["order_id"]),
        (
            order_body(lines=[{"product_id": "p", "quantity": 0, "unit_price": 1}]),
            ["lines.0.quantity"],
        ),
        (
            order_body(lines=[{"product_id": "p", "quantity": 10001, "unit_price": 1}]),
            ["lines.0.quantity"],
        ),
        (
            order_body(lines=[{"product_id": "p", "quantity": "2", "unit_price": 1}]),
            ["lines.0.quantity"],
        ),
        (
            order_body(lines=[{"product_id": "p", "quantity": 1, "unit_price": "1.001"}]),
            ["lines.0.unit_price"],
        ),
        (
            order_body(lines=[{"product_id": "p", "quantity": 1, "unit_price": -1}]),
            ["lines.0.unit_price"],
        ),
        (
            order_body(lines=[{"product_id": "p", "quantity": 1, "unit_price": "abc"}]),
            ["lines.0.unit_price"],
        ),
        (
            order_body(lines=[{"product_id": "p", "quantity": 1, "unit_price": True}]),
            ["lines.0.unit_price"],
        ),
        (order_body(lines=[{"product_id": "p", "quantity": 1, "unit_price": 1}] * 101), ["lines"]),
        (order_body(extra="field"), ["extra"]),
    ],
)
def test_invalid_fields_are_422_and_write_nothing(
    client: FlaskClient, store: EventStore, body: dict[str, Any], fields: list[str]
) -> None:
    assert_problem(client.post("/orders", json=body), 422, *fields)
    assert store.head_position() == 0


def test_json_number_price_is_exact(client: FlaskClient, store: EventStore) -> None:
    body = order_body(lines=[{"product_id": "p", "quantity": 3, "unit_price": 0.1}])
    assert client.post("/orders", json=body).status_code == 201
    assert store.load_stream("o-1")[0].data["total_cents"] == 30


def test_malformed_json_is_400(client: FlaskClient, store: EventStore) -> None:
    response = client.post("/orders", data="{not json", content_type="application/json")
    assert_problem(response, 400)
    response = client.post("/orders", data="[1, 2]", content_type="application/json")
    assert_problem(response, 400)
    response = client.post("/orders", data='{"x": NaN}', content_type="application/json")
    assert_problem(response, 400, "_body")
    assert store.head_position() == 0


def test_wrong_content_type_is_415(client: FlaskClient, store: EventStore) -> None:
    response = client.post("/orders", data="customer_id=c", content_type="text/plain")
    assert_problem(response, 415)
    assert store.head_position() == 0


def test_body_over_the_limit_is_413(client: FlaskClient, store: EventStore) -> None:
    body = order_body(customer_id="c" * 9000)
    assert_problem(client.post("/orders", json=body), 413)
    assert store.head_position() == 0


def test_status_changes_through_the_lifecycle(client: FlaskClient) -> None:
    place(client)  # position 1
    fund(client)  # AccountOpened 2, FundsDeposited 3
    paid = client.post("/orders/o-1/status", json={"status": "PAID"})
    assert paid.status_code == 200
    # OrderStatusChanged at 4 and AccountDebited at 5, one append: the position is the last.
    assert paid.get_json() == {
        "order_id": "o-1",
        "version": 2,
        "position": 5,
        "status": "PAID",
        "account": {
            "customer_id": "c-1",
            "version": 3,
            "movement": "debit",
            "amount_cents": 2599,
            "amount": "25.99",
            "balance_cents": 100000 - 2599,
            "balance": "974.01",
        },
    }
    for version, status in enumerate(["SHIPPED", "DELIVERED"], start=3):
        response = client.post("/orders/o-1/status", json={"status": status})
        assert response.status_code == 200
        assert response.get_json() == {
            "order_id": "o-1",
            "version": version,
            "position": version + 3,
            "status": status,
        }


def test_invalid_transition_is_409_with_current_state(
    client: FlaskClient, store: EventStore
) -> None:
    place(client)
    body = assert_problem(client.post("/orders/o-1/status", json={"status": "DELIVERED"}), 409)
    assert (body["current_version"], body["current_status"]) == (1, "PLACED")
    assert "PLACED" in body["detail"] and "DELIVERED" in body["detail"]
    assert store.head_position() == 1


def test_expected_version_mismatch_is_409(client: FlaskClient, store: EventStore) -> None:
    place(client)
    response = client.post("/orders/o-1/status", json={"status": "PAID", "expected_version": 2})
    body = assert_problem(response, 409)
    assert (body["current_version"], body["expected_version"]) == (1, 2)
    assert store.head_position() == 1
    fund(client)
    ok = client.post("/orders/o-1/status", json={"status": "PAID", "expected_version": 1})
    assert ok.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "status"),
        ({"status": "LOST"}, "status"),
        ({"status": "PLACED"}, "status"),
        ({"status": "PAID", "expected_version": "1"}, "expected_version"),
        ({"status": "PAID", "expected_version": 0}, "expected_version"),
    ],
)
def test_invalid_status_request_is_422(
    client: FlaskClient, store: EventStore, body: dict[str, Any], field: str
) -> None:
    place(client)
    assert_problem(client.post("/orders/o-1/status", json=body), 422, field)
    assert store.head_position() == 1


def test_unknown_order_is_404(client: FlaskClient, store: EventStore) -> None:
    assert_problem(client.post("/orders/nope/status", json={"status": "PAID"}), 404)
    assert_problem(client.delete("/orders/nope"), 404)
    assert_problem(client.get("/orders/nope/events"), 404)
    assert_problem(client.get("/orders/nope"), 404)
    assert store.head_position() == 0


def test_delete_records_a_cancellation_and_keeps_history(
    client: FlaskClient, store: EventStore
) -> None:
    place(client)
    response = client.delete("/orders/o-1")
    assert response.status_code == 200
    assert response.get_json()["status"] == "CANCELLED"
    assert [e.type for e in store.load_stream("o-1")] == ["OrderPlaced", "OrderCancelled"]
    assert_problem(client.delete("/orders/o-1"), 409)


@pytest.mark.parametrize(
    ("kwargs", "ok"),
    [
        ({"headers": {"If-Match": '"1"'}}, True),
        ({"headers": {"If-Match": "1"}}, True),
        ({"query_string": {"expected_version": 1}}, True),
        ({"json": {"expected_version": 1, "reason": "duplicate"}}, True),
        ({"headers": {"If-Match": '"2"'}}, False),
        ({"query_string": {"expected_version": 3}}, False),
    ],
)
def test_delete_with_expected_version(
    client: FlaskClient, store: EventStore, kwargs: dict[str, Any], ok: bool
) -> None:
    place(client)
    response = client.delete("/orders/o-1", **kwargs)
    if ok:
        assert response.status_code == 200
        assert store.stream_version("o-1") == 2
    else:
        assert_problem(response, 409)
        assert store.stream_version("o-1") == 1


def test_delete_with_bad_expected_version_is_400(client: FlaskClient, store: EventStore) -> None:
    place(client)
    for bad in ("abc", '"0"', '"1', '"²"', "*"):
        assert_problem(client.delete("/orders/o-1", headers={"If-Match": bad}), 400, "If-Match")
    assert store.stream_version("o-1") == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"headers": {"If-Match": '"1"'}, "query_string": {"expected_version": 2}},
        {"headers": {"If-Match": 'W/"2"'}, "json": {"expected_version": 1}},
        {"query_string": {"expected_version": 1}, "json": {"expected_version": 3}},
        {"headers": {"If-Match": ""}},  # an empty list of entity tags: matches no version
    ],
)
def test_expected_versions_that_cannot_all_hold_are_a_version_conflict(
    client: FlaskClient, store: EventStore, kwargs: dict[str, Any]
) -> None:
    """Each expected version given is a precondition; differing ones never all hold."""
    place(client)
    body = assert_problem(client.delete("/orders/o-1", **kwargs), 409)
    assert body["type"].endswith(":version-conflict") and body["current_version"] == 1
    assert store.stream_version("o-1") == 1
    agreeing = {"If-Match": 'W/"1"'}
    response = client.delete("/orders/o-1", headers=agreeing, query_string={"expected_version": 1})
    assert response.status_code == 200


def test_order_events_stream(client: FlaskClient) -> None:
    place(client)
    fund(client)
    assert client.post("/orders/o-1/status", json={"status": "PAID"}).status_code == 200
    body = client.get("/orders/o-1/events").get_json()
    assert body["version"] == 2
    assert [e["type"] for e in body["events"]] == ["OrderPlaced", "OrderStatusChanged"]
    first = body["events"][0]
    assert set(first) == {
        "event_id",
        "type",
        "stream_id",
        "version",
        "position",
        "occurred_at",
        "schema_version",
        "data",
        "metadata",
    }
    assert first["occurred_at"].endswith("Z")


def test_log_feed_pages_in_order(client: FlaskClient) -> None:
    for i in range(5):
        place(client, f"o-{i}")
    first = client.get("/events?after=0&limit=2").get_json()
    assert [e["position"] for e in first["events"]] == [1, 2]
    assert first["has_more"] is True
    rest = client.get(f"/events?after={first['next_after']}&limit=10").get_json()
    assert [e["position"] for e in rest["events"]] == [3, 4, 5]
    assert rest["has_more"] is False


def test_log_feed_serves_events_as_stored(client: FlaskClient, store: EventStore) -> None:
    fund(client)
    place(client)
    store.append("stréam", 0, [NewEvent("Happened", {"text": "naïve ☃", "n": [1, {"x": None}]})])
    response = client.get("/events?after=1&limit=5")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    stored = store.read_all(1, 5)
    assert response.get_json() == {
        "events": [e.to_dict() for e in stored],
        "next_after": stored[-1].position,
        "has_more": False,
    }
    # ASCII-escaped, as jsonify wrote it.
    assert response.get_data().isascii() and b"str\\u00e9am" in response.get_data()


@pytest.mark.parametrize("query", ["after=-1", "after=x", "limit=0", "limit=1001"])
def test_log_feed_rejects_bad_parameters(client: FlaskClient, query: str) -> None:
    name = query.split("=")[0]
    assert_problem(client.get(f"/events?{query}"), 400, name)


def test_unknown_route_and_method_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/nowhere"), 404)
    response = client.put("/orders")
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_health_and_readiness(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    place(client)
    # Open to anyone, so it tells no positions: the head is behind events:read.
    assert client.get("/readyz").get_json() == {"status": "ready"}
    assert client.get("/events/head").get_json() == {"head_position": 1}
