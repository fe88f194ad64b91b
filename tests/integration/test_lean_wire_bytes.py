"""The command API's bytes on the wire, pinned: the 201 of POST /orders, a GET, and
problem+json, each exactly as the json module with the previous settings writes them."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

# jsonify's output (Flask's default provider, not in debug): sorted, compact, ASCII, newline.
JSONIFY = {"sort_keys": True, "ensure_ascii": True, "separators": (",", ":")}
ORDER = {
    "order_id": "o-wire-1",
    "customer_id": "c-wire",
    "lines": [
        {"product_id": "p-1", "quantity": 2, "unit_price": "12.50"},
        {"product_id": "p-2", "quantity": 1, "unit_price": 3},
    ],
}


def jsonify_bytes(body: Any) -> bytes:
    return (json.dumps(body, **JSONIFY) + "\n").encode()


def assert_json_wire(response: TestResponse, expected_body: dict[str, Any]) -> None:
    raw = response.get_data()
    assert raw == jsonify_bytes(expected_body)
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == str(len(raw))


def test_post_orders_201_bytes(client: FlaskClient) -> None:
    response = client.post("/orders", json=ORDER)
    assert response.status_code == 201
    assert_json_wire(
        response, {"order_id": "o-wire-1", "position": 1, "status": "PLACED", "version": 1}
    )
    assert response.get_data() == (
        b'{"order_id":"o-wire-1","position":1,"status":"PLACED","version":1}\n'
    )
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == "/orders/o-wire-1"
    names = [name for name, _ in response.headers]
    assert names[:4] == ["Content-Type", "Content-Length", "ETag", "Location"]


def test_get_order_bytes(client: FlaskClient) -> None:
    assert client.post("/orders", json=ORDER).status_code == 201
    response = client.get("/orders/o-wire-1")
    assert response.status_code == 200
    assert_json_wire(
        response,
        {
            "currency": "EUR",
            "customer_id": "c-wire",
            "lines": [
                {"product_id": "p-1", "quantity": 2, "unit_price_cents": 1250},
                {"product_id": "p-2", "quantity": 1, "unit_price_cents": 300},
            ],
            "order_id": "o-wire-1",
            "status": "PLACED",
            "total_cents": 2800,
            "version": 1,
        },
    )


def test_problem_json_bytes_keep_non_ascii_escaped(client: FlaskClient) -> None:
    # An unknown field named in non-ASCII: the 422 names it, escaped as before.
    body = {**ORDER, "prïce€😀": 1, "lines": [{**ORDER["lines"][0], "quantity": 1.5}]}  # type: ignore[dict-item]
    response = client.post("/orders", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 422
    raw = response.get_data()
    parsed = json.loads(raw)
    # flask.json.dumps as problem_response uses it: sorted, ASCII, default separators.
    assert raw == json.dumps(parsed, sort_keys=True, ensure_ascii=True).encode()
    assert raw.isascii()
    assert "\\u00efce\\u20ac\\ud83d\\ude00" in raw.decode()
    assert parsed["errors"]["prïce€😀"] == ["Unknown field."]
    assert parsed["errors"]["lines.0.quantity"] == ["Not a valid integer."]
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers["Content-Length"] == str(len(raw))


def test_malformed_json_problem_bytes(client: FlaskClient) -> None:
    response = client.post("/orders", data=b'{"a": NaN}', content_type="application/json")
    assert response.status_code == 400
    detail = "Body is not valid JSON: NaN is not valid JSON"
    expected = {
        "detail": detail,
        "errors": {"_body": [detail]},
        "instance": "/orders",
        "status": 400,
        "title": "Malformed JSON",
        "type": "urn:event-sourced-orders:problem:malformed-json",
    }
    assert response.get_data() == json.dumps(expected, sort_keys=True).encode()
    assert response.headers["Content-Type"] == "application/problem+json"
