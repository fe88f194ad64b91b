"""The authorization contract, route by route, as docs/security.md states it: what the
services' own policies are checked against (never derived from them)."""

from __future__ import annotations

import re

from shared.contract.principal import (
    ACCOUNTS_DEPOSIT,
    ACCOUNTS_WRITE,
    ADMIN,
    EVENTS_READ,
    METRICS_READ,
    ORDERS_FULFIL,
    ORDERS_WRITE,
    READ_ALL,
    READ_OWN,
)

PUBLIC = "public"  # no token needed
READ = frozenset({READ_OWN, READ_ALL})

RoutePolicy = frozenset[str] | str  # the scopes any one of which admits a token, or PUBLIC
Contract = dict[tuple[str, str], RoutePolicy]  # (method, Flask rule) -> its policy

COMMAND_POLICIES: Contract = {
    ("POST", "/orders"): frozenset({ORDERS_WRITE}),
    ("POST", "/orders/<order_id>/status"): frozenset({ORDERS_WRITE, ORDERS_FULFIL}),
    ("DELETE", "/orders/<order_id>"): frozenset({ORDERS_WRITE}),
    ("GET", "/orders/<order_id>"): READ,
    ("GET", "/orders/<order_id>/events"): frozenset({EVENTS_READ}),
    ("POST", "/accounts"): frozenset({ACCOUNTS_WRITE}),
    ("POST", "/accounts/<customer_id>/deposits"): frozenset({ACCOUNTS_DEPOSIT}),
    ("GET", "/accounts/<customer_id>"): READ,
    ("GET", "/accounts/<customer_id>/events"): frozenset({EVENTS_READ}),
    ("GET", "/events"): frozenset({EVENTS_READ}),
    ("GET", "/events/head"): frozenset({EVENTS_READ}),
    ("GET", "/metrics"): frozenset({METRICS_READ}),
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/asyncapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/static/<path:filename>"): PUBLIC,
}

QUERY_POLICIES: Contract = {
    ("GET", "/orders"): READ,
    ("GET", "/orders/<order_id>"): READ,
    ("GET", "/orders/<order_id>/history"): READ,
    ("GET", "/orders/<order_id>/kafka-messages"): frozenset({READ_ALL}),
    ("GET", "/customers/<customer_id>"): READ,
    ("GET", "/customers/<customer_id>/orders"): READ,
    ("GET", "/accounts/<customer_id>"): READ,
    ("GET", "/accounts/<customer_id>/statement"): READ,
    ("GET", "/accounts/<customer_id>/kafka-messages"): frozenset({READ_ALL}),
    ("GET", "/products/top"): frozenset({READ_ALL}),
    ("GET", "/products/<product_id>/sales"): frozenset({READ_ALL}),
    ("GET", "/projector/status"): frozenset({METRICS_READ, READ_ALL}),
    ("GET", "/parked"): frozenset({READ_ALL}),
    ("GET", "/parked/actions"): frozenset({READ_ALL}),
    ("GET", "/parked/<int:parked_id>"): frozenset({READ_ALL}),
    ("POST", "/parked/<int:parked_id>/retry"): frozenset({ADMIN}),
    ("POST", "/parked/<int:parked_id>/discard"): frozenset({ADMIN}),
    ("GET", "/metrics"): frozenset({METRICS_READ}),
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/static/<path:filename>"): PUBLIC,
}


def concrete(rule: str, **ids: str) -> str:
    """The rule with its variables filled in: concrete("/orders/<order_id>", order_id="o-1")."""
    path = rule
    for name, value in ids.items():
        path = re.sub(rf"<(?:\w+:)?{name}>", value, path)
    assert "<" not in path, f"no value for a variable of {rule}"
    return path
