"""Maps domain events to stored (type, schema version, JSON data) and back.

The stored shape is a public contract (Kafka consumers read it), so it is written out field by
field here instead of dumping dataclasses, and each type carries an explicit schema version.
"""

from __future__ import annotations

from typing import Any

from command_service.domain.order import (
    Event,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
)
from shared.envelope import EventEnvelope

SCHEMA_VERSIONS: dict[str, int] = {
    "OrderPlaced": 1,
    "OrderStatusChanged": 1,
    "OrderCancelled": 1,
}


class UnknownEventType(ValueError):
    """A stored event whose type or schema version this code cannot read."""


def encode(event: Event) -> tuple[str, int, dict[str, Any]]:
    """Domain event -> (event type, schema version, JSON-ready data)."""
    if isinstance(event, OrderPlaced):
        data: dict[str, Any] = {
            "order_id": event.order_id,
            "customer_id": event.customer_id,
            "lines": [_line(line) for line in event.lines],
            "total_cents": event.total_cents,
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
    """Stored event -> domain event."""
    expected_version = SCHEMA_VERSIONS.get(envelope.type)
    if expected_version is None or envelope.schema_version != expected_version:
        raise UnknownEventType(f"{envelope.type} v{envelope.schema_version}")
    data = envelope.data
    if envelope.type == "OrderPlaced":
        return OrderPlaced(
            order_id=data["order_id"],
            customer_id=data["customer_id"],
            lines=tuple(_parse_line(line) for line in data["lines"]),
            total_cents=data["total_cents"],
        )
    if envelope.type == "OrderStatusChanged":
        return OrderStatusChanged(
            order_id=data["order_id"],
            customer_id=data["customer_id"],
            from_status=OrderStatus(data["from_status"]),
            to_status=OrderStatus(data["to_status"]),
            total_cents=data["total_cents"],
        )
    return OrderCancelled(
        order_id=data["order_id"],
        customer_id=data["customer_id"],
        previous_status=OrderStatus(data["previous_status"]),
        lines=tuple(_parse_line(line) for line in data["lines"]),
        total_cents=data["total_cents"],
        reason=data.get("reason"),
    )


def _line(line: OrderLine) -> dict[str, Any]:
    return {
        "product_id": line.product_id,
        "quantity": line.quantity,
        "unit_price_cents": line.unit_price_cents,
        "amount_cents": line.amount_cents,
    }


def _parse_line(raw: dict[str, Any]) -> OrderLine:
    return OrderLine(raw["product_id"], raw["quantity"], raw["unit_price_cents"])
