"""Maps domain events to stored (type, schema version, JSON data) and back.

The stored shape is a public contract (Kafka consumers read it), so it is written out field by
field here instead of dumping dataclasses, and each type carries an explicit schema version.
"""

from __future__ import annotations

from typing import Any

from command_service.domain.account import (
    AccountCredited,
    AccountDebited,
    AccountEvent,
    AccountOpened,
    FundsDeposited,
)
from command_service.domain.order import (
    Event,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
)
from shared.contract.envelope import EventEnvelope
from shared.contract.upcasting import EVENT_SCHEMAS, UnsupportedSchema

SCHEMA_VERSIONS = EVENT_SCHEMAS.current


class UnknownEventType(ValueError):
    """A stored event whose type or schema version this code cannot read."""


def encode(event: Event | AccountEvent) -> tuple[str, int, dict[str, Any]]:
    """Domain event -> (event type, schema version, JSON-ready data)."""
    if isinstance(event, AccountOpened | FundsDeposited | AccountDebited | AccountCredited):
        data: dict[str, Any] = _account_data(event)
    elif isinstance(event, OrderPlaced):
        data = {
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "lines": [_line(line) for line in event.lines],
            "total_cents": event.total_cents,
            "currency": event.currency,
        }
    elif isinstance(event, OrderStatusChanged):
        data = {
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "from_status": event.from_status.value,
            "to_status": event.to_status.value,
            "total_cents": event.total_cents,
        }
    else:
        data = {
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "previous_status": event.previous_status.value,
            "lines": [_line(line) for line in event.lines],
            "total_cents": event.total_cents,
            "reason": event.reason,
        }
    event_type = type(event).__name__
    return event_type, SCHEMA_VERSIONS[event_type], data


def decode(envelope: EventEnvelope) -> Event:
    """Stored order event (any schema version) -> domain event."""
    data = _current_data(envelope)
    if envelope.type == "OrderPlaced":
        return OrderPlaced(
            order_id=data["order_id"],
            customer_id=data["customer_id"],
            lines=tuple(_parse_line(line) for line in data["lines"]),
            total_cents=data["total_cents"],
            currency=data["currency"],
        )
    if envelope.type == "OrderStatusChanged":
        return OrderStatusChanged(
            order_id=data["order_id"],
            customer_id=data["customer_id"],
            from_status=OrderStatus(data["from_status"]),
            to_status=OrderStatus(data["to_status"]),
            total_cents=data["total_cents"],
        )
    if envelope.type == "OrderCancelled":
        return OrderCancelled(
            order_id=data["order_id"],
            customer_id=data["customer_id"],
            previous_status=OrderStatus(data["previous_status"]),
            lines=tuple(_parse_line(line) for line in data["lines"]),
            total_cents=data["total_cents"],
            reason=data.get("reason"),
        )
    raise UnknownEventType(f"{envelope.type} is not an order event")


def _line(line: OrderLine) -> dict[str, Any]:
    return {
        "product_id": line.product_id,
        "quantity": line.quantity,
        "unit_price_cents": line.unit_price_cents,
        "amount_cents": line.amount_cents,
    }


def _parse_line(raw: dict[str, Any]) -> OrderLine:
    return OrderLine(raw["product_id"], raw["quantity"], raw["unit_price_cents"])


def decode_account(envelope: EventEnvelope) -> AccountEvent:
    """Stored account event (any schema version) -> domain event."""
    data = _current_data(envelope)
    if envelope.type == "AccountOpened":
        return AccountOpened(data["customer_id"])
    if envelope.type == "FundsDeposited":
        return FundsDeposited(
            data["customer_id"], data["amount_cents"], data["balance_cents"], data["deposit_id"]
        )
    if envelope.type == "AccountDebited":
        return AccountDebited(
            data["customer_id"], data["order_id"], data["amount_cents"], data["balance_cents"]
        )
    if envelope.type == "AccountCredited":
        return AccountCredited(
            data["customer_id"], data["order_id"], data["amount_cents"], data["balance_cents"]
        )
    raise UnknownEventType(f"{envelope.type} is not an account event")


def _current_data(envelope: EventEnvelope) -> dict[str, Any]:
    try:
        return EVENT_SCHEMAS.upcast(envelope).data
    except UnsupportedSchema as exc:
        raise UnknownEventType(str(exc)) from exc


def _account_data(event: AccountEvent) -> dict[str, Any]:
    if isinstance(event, AccountOpened):
        return {"customer_id": event.customer_id}
    if isinstance(event, FundsDeposited):
        return {
            "customer_id": event.customer_id,
            "amount_cents": event.amount_cents,
            "balance_cents": event.balance_cents,
            "deposit_id": event.deposit_id,
        }
    return {
        "customer_id": event.customer_id,
        "order_id": event.order_id,
        "amount_cents": event.amount_cents,
        "balance_cents": event.balance_cents,
    }
