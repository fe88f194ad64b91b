"""The read side's parsing of the event contract, checked against the command side's encoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from command_service.adapters.event_codec import encode
from command_service.domain import order as domain
from query_service.projection.events import (
    Actor,
    Line,
    OrderCancelled,
    OrderPlaced,
    OrderStatusChanged,
    UnprojectableEvent,
)
from query_service.projection.parsing import parse_message, parse_raw
from shared.contract.envelope import EventEnvelope

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def envelope(event: domain.Event, version: int, position: int = 7) -> EventEnvelope:
    event_type, schema_version, data = encode(event)
    return EventEnvelope(
        f"evt-{version}", event_type, event.order_id, version, position, T0, schema_version, data
    )


def valid_placed() -> dict[str, Any]:
    lines = (domain.OrderLine("apple", 2, 150), domain.OrderLine("pear", 1, 99))
    return envelope(domain.OrderPlaced("o-1", "c-1", lines, 399), 1).to_dict()


def test_each_command_side_event_parses_to_its_read_side_form() -> None:
    lines = (domain.OrderLine("apple", 2, 150),)
    placed = domain.OrderPlaced("o-1", "c-1", lines, 300)
    paid = domain.OrderStatusChanged(
        "o-1", "c-1", domain.OrderStatus.PLACED, domain.OrderStatus.PAID, 300
    )
    cancelled = domain.OrderCancelled(
        "o-1", "c-1", domain.OrderStatus.PAID, lines, 300, reason=None
    )

    assert parse_message(envelope(placed, 1).to_json()) == OrderPlaced(
        "evt-1", "o-1", "c-1", 1, 7, T0, (Line("apple", 2, 150),), 300
    )
    assert parse_message(envelope(paid, 2).to_json()) == OrderStatusChanged(
        "evt-2", "o-1", "c-1", 2, 7, T0, "PLACED", "PAID", 300
    )
    assert parse_raw(envelope(cancelled, 3).to_dict()) == OrderCancelled(
        "evt-3", "o-1", "c-1", 3, 7, T0, "PAID", (Line("apple", 2, 150),), 300, None
    )


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    target = raw
    *parents, last = path.split(".")
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return raw


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("type", "OrderShipped", "unsupported event type"),
        ("schema_version", 3, "newer than this code"),
        ("data.customer_id", _DELETE, "customer_id"),
        ("data.order_id", "o-2", "not the stream id"),
        ("data.total_cents", 400, "not the sum"),
        ("data.total_cents", 399.0, "non-negative integer"),
        ("data.lines", [], "non-empty list"),
        ("data.lines.0.quantity", 0, "at least 1"),
        ("data.lines.0.quantity", True, "non-negative integer"),
        ("data.lines.0.amount_cents", 1, "quantity x unit price"),
        ("data.lines.0.product_id", "x" * 65, "1 to 64 characters"),
        ("version", 2, "starts with OrderPlaced"),
        ("event_id", "e" * 65, "longer than 64"),
        ("occurred_at", "2025-03-01T12:00:00", "no timezone"),
    ],
)
def test_malformed_events_are_unprojectable(path: str, value: Any, message: str) -> None:
    raw = _with(valid_placed(), path, value)
    with pytest.raises(UnprojectableEvent, match=message):
        parse_message(json.dumps(raw).encode())


def test_a_status_change_cannot_cancel_or_reopen() -> None:
    for target in ("CANCELLED", "PLACED", "LOST"):
        raw = envelope(
            domain.OrderStatusChanged(
                "o-1", "c-1", domain.OrderStatus.PLACED, domain.OrderStatus.PAID, 300
            ),
            2,
        ).to_dict()
        raw["data"]["to_status"] = target
        with pytest.raises(UnprojectableEvent):
            parse_raw(raw)


@pytest.mark.parametrize("value", [None, b"", b"not json", b"[1, 2]", b"\xff\xfe"])
def test_messages_that_are_not_envelopes_are_unprojectable(value: bytes | None) -> None:
    with pytest.raises(UnprojectableEvent):
        parse_message(value)


# --- who acted: metadata.principal -------------------------------------------------------


def test_the_principal_in_metadata_becomes_the_events_actor_without_its_jti() -> None:
    raw = valid_placed()
    raw["metadata"] = {
        "correlation_id": "corr-1",
        "principal": {
            "sub": "user-7", "iss": "https://idp.example", "customer_id": "c-1",
            "client_id": "web-shop", "jti": "token-id-1",
        },
    }  # fmt: skip

    event = parse_raw(raw)

    assert event.by == Actor("user-7", "https://idp.example", "c-1", "web-shop")
    assert "token-id-1" not in repr(event)


def test_a_principal_of_a_service_has_no_customer() -> None:
    raw = valid_placed()
    raw["metadata"] = {"principal": {"sub": "fulfilment", "iss": "urn:dev"}}
    assert parse_message(json.dumps(raw).encode()).by == Actor("fulfilment", "urn:dev", None, None)


def test_events_stored_before_principals_were_recorded_have_no_actor() -> None:
    assert parse_raw(valid_placed()).by is None
    raw = valid_placed()
    raw["metadata"] = {"correlation_id": "corr-1", "principal": None}
    assert parse_raw(raw).by is None


@pytest.mark.parametrize(
    ("principal", "message"),
    [
        ("user-7", "principal must be an object"),
        ({"iss": "urn:dev"}, "sub must be a non-empty string"),
        ({"sub": ""}, "sub must be a non-empty string"),
        ({"sub": 7}, "sub must be a non-empty string"),
        ({"sub": "user-7", "customer_id": 42}, "principal.customer_id must be a string"),
        ({"sub": "user-7", "client_id": ["a"]}, "principal.client_id must be a string"),
    ],
)
def test_a_malformed_principal_is_unprojectable(principal: Any, message: str) -> None:
    raw = valid_placed()
    raw["metadata"] = {"principal": principal}
    with pytest.raises(UnprojectableEvent, match=message):
        parse_raw(raw)
