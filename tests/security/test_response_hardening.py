"""Every response of both real services is nosniff and, but for the public documents, no-store;
hostile bodies and cursors are 400s naming what was wrong, never 500s."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from shared.contract.principal import READ_OWN
from shared.http.security_headers import CACHEABLE_PATHS
from tests.security.system import SecuritySystem

DEEP = "[" * 3000 + "]" * 3000  # 6 KB: far under the body limit, far over the parser's depth
LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "1.00"}]
ORDER = {"order_id": "o-hard", "customer_id": "c-hard", "lines": LINES}

# (service, method, path, who, body): one of each kind of answer, errors and 404s included.
REQUESTS: list[tuple[str, str, str, str, Any]] = [
    ("command", "GET", "/healthz", "nobody", None),
    ("command", "GET", "/readyz", "nobody", None),
    ("command", "GET", "/openapi.json", "nobody", None),
    ("command", "GET", "/docs", "nobody", None),
    ("command", "GET", "/nowhere", "nobody", None),
    ("command", "PUT", "/orders", "admin", None),
    ("command", "GET", "/events/head", "nobody", None),
    ("command", "GET", "/events/head", "reader", None),
    ("command", "GET", "/events/head", "admin", None),
    ("command", "GET", "/events?limit=0", "admin", None),
    ("command", "POST", "/orders", "admin", "{not json"),
    ("command", "POST", "/orders", "admin", {"customer_id": "c-hard"}),
    ("command", "POST", "/orders", "admin", ORDER),
    ("command", "POST", "/orders", "admin", {**ORDER, "note": "x" * 100_000}),
    ("command", "GET", "/orders/o-hard", "admin", None),
    ("command", "GET", "/orders/o-missing", "admin", None),
    ("command", "GET", "/accounts/c-hard", "admin", None),
    ("command", "GET", "/metrics", "admin", None),
    ("query", "GET", "/healthz", "nobody", None),
    ("query", "GET", "/readyz", "nobody", None),
    ("query", "GET", "/openapi.json", "nobody", None),
    ("query", "GET", "/docs", "nobody", None),
    ("query", "GET", "/nowhere", "nobody", None),
    ("query", "POST", "/orders", "admin", None),
    ("query", "GET", "/orders", "nobody", None),
    ("query", "GET", "/products/top", "reader", None),
    ("query", "GET", "/orders?limit=x", "admin", None),
    ("query", "GET", "/orders/not%20an%20id", "admin", None),
    ("query", "GET", "/orders", "admin", None),
    ("query", "GET", "/accounts/c-missing", "admin", None),
    ("query", "GET", "/metrics", "admin", None),
]


def send(system: SecuritySystem, service: str, method: str, path: str, who: str, body: Any) -> Any:
    headers = {
        "nobody": {},
        "reader": system.headers("user-hard", [READ_OWN], "c-hard"),
        "admin": system.admin,
    }[who]
    call = system.command if service == "command" else system.query
    if isinstance(body, str):
        headers = {**headers, "Content-Type": "application/json"}
        return call(method, path, data=body, headers=headers)
    return call(method, path, json=body, headers=headers)


@pytest.fixture(scope="module")
def answers(security_system: SecuritySystem) -> list[tuple[str, str, requests.Response]]:
    # Sent in order (o-hard is placed before it is read), so once for the module.
    return [
        (service, path, send(security_system, service, method, path, who, body))
        for service, method, path, who, body in REQUESTS
    ]


def test_the_requests_cover_successes_and_every_kind_of_error(
    answers: list[tuple[str, str, requests.Response]],
) -> None:
    statuses = {response.status_code for _, _, response in answers}
    assert {200, 201, 400, 401, 403, 404, 405, 413, 422} <= statuses
    assert max(statuses) < 500


def test_every_response_is_nosniff(answers: list[tuple[str, str, requests.Response]]) -> None:
    for service, path, response in answers:
        assert response.headers.get("X-Content-Type-Options") == "nosniff", (service, path)


def test_every_response_but_the_public_documents_is_no_store(
    answers: list[tuple[str, str, requests.Response]],
) -> None:
    assert {"/openapi.json", "/docs", "/healthz"} == CACHEABLE_PATHS
    for service, path, response in answers:
        cache_control = response.headers.get("Cache-Control", "")
        if path in CACHEABLE_PATHS:
            assert "no-store" not in cache_control, (service, path)
        else:
            assert cache_control == "no-store", (service, path, response.status_code)


WRITES = [
    ("POST", "/orders"),
    ("POST", "/orders/o-hard/status"),
    ("DELETE", "/orders/o-hard"),
    ("POST", "/accounts"),
    ("POST", "/accounts/c-hard/deposits"),
]


@pytest.mark.parametrize("key", [None, "deep-key"])
@pytest.mark.parametrize("method, path", WRITES)
@pytest.mark.parametrize("body", [DEEP, '{"customer_id": ' + DEEP + "}"])
def test_a_deeply_nested_body_is_400_naming_the_body(
    security_system: SecuritySystem,
    answers: Any,
    method: str,
    path: str,
    key: str | None,
    body: str,
) -> None:
    system = security_system
    head = system.head_position()
    headers = {**system.admin, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    response = system.command(method, path, data=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "_body" in response.json()["errors"]
    assert system.head_position() == head


@pytest.mark.parametrize("depth", [100, 190])
def test_a_nested_cursor_is_400_not_500(security_system: SecuritySystem, depth: int) -> None:
    # Cursors are capped at 512 characters, which keeps any nesting far from the parser's limit.
    raw = ("[" * depth + "]" * depth).encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    for value in (cursor, cursor * 3):
        response = security_system.query(
            "GET", "/orders", params={"cursor": value}, headers=security_system.admin
        )
        assert response.status_code == 400, response.text
        assert "cursor" in response.json()["errors"]
