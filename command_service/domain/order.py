"""The Order aggregate as a decider: pure functions from commands and events to events and state.

Nothing here does I/O or imports a framework, so every business rule is unit-testable as
given events / when command / then events or error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from functools import reduce

from command_service.domain.errors import (
    InvalidCommand,
    InvalidTransition,
    OrderAlreadyExists,
    OrderNotFound,
)

IDENTIFIER = re.compile(r"[A-Za-z0-9._-]{1,64}")
CURRENCY = "EUR"  # the platform's one currency: accounts and orders are all in it
MIN_LINES, MAX_LINES = 1, 100
MIN_QUANTITY, MAX_QUANTITY = 1, 10_000


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle."""

    PLACED = "PLACED"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


# The lifecycle: PLACED -> PAID -> SHIPPED -> DELIVERED, PLACED|PAID -> CANCELLED.
ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


@dataclass(frozen=True)
class OrderLine:
    """One product on an order; money is integer cents, never float."""

    product_id: str
    quantity: int
    unit_price_cents: int

    @property
    def amount_cents(self) -> int:
        return self.quantity * self.unit_price_cents


# --- commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PlaceOrder:
    """Add an order (the original design's "add order")."""

    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]


@dataclass(frozen=True)
class ChangeOrderStatus:
    """Move an order along its lifecycle (the original design's "update order status")."""

    order_id: str
    status: OrderStatus


@dataclass(frozen=True)
class CancelOrder:
    """Cancel an order (the original design's "delete order"); the log keeps its history."""

    order_id: str
    reason: str | None = None


Command = PlaceOrder | ChangeOrderStatus | CancelOrder


# --- events -------------------------------------------------------------------------------
# Each event carries what a reader needs without looking anything else up (customer, totals),
# so projections can be built from the event alone.


@dataclass(frozen=True)
class OrderPlaced:
    """An order was accepted with its lines and computed total."""

    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    total_cents: int
    currency: str = CURRENCY


@dataclass(frozen=True)
class OrderStatusChanged:
    """An order moved from one status to the next."""

    order_id: str
    customer_id: str
    from_status: OrderStatus
    to_status: OrderStatus
    total_cents: int


@dataclass(frozen=True)
class OrderCancelled:
    """An order was cancelled; carries its lines and total so readers can reverse its effects."""

    order_id: str
    customer_id: str
    previous_status: OrderStatus
    lines: tuple[OrderLine, ...]
    total_cents: int
    reason: str | None = None


Event = OrderPlaced | OrderStatusChanged | OrderCancelled


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """The state of one order, folded from its events."""

    order_id: str
    customer_id: str
    lines: tuple[OrderLine, ...]
    total_cents: int
    status: OrderStatus
    version: int
    currency: str = CURRENCY


def evolve(state: Order | None, event: Event) -> Order:
    """Fold one event into the state; events are facts, so this never rejects."""
    if isinstance(event, OrderPlaced):
        return Order(
            order_id=event.order_id,
            customer_id=event.customer_id,
            lines=event.lines,
            total_cents=event.total_cents,
            status=OrderStatus.PLACED,
            version=1,
            currency=event.currency,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before OrderPlaced for {event.order_id}")
    if isinstance(event, OrderStatusChanged):
        return replace(state, status=event.to_status, version=state.version + 1)
    return replace(state, status=OrderStatus.CANCELLED, version=state.version + 1)


def load(events: Iterable[Event]) -> Order | None:
    """Rebuild an order from its stream (None for an empty stream)."""
    return reduce(evolve, events, None)


def decide(state: Order | None, command: Command) -> list[Event]:
    """Check a command against the current state and return the events it causes."""
    if isinstance(command, PlaceOrder):
        return _place(state, command)
    if state is None:
        raise OrderNotFound(command.order_id)
    if isinstance(command, ChangeOrderStatus):
        if command.status is OrderStatus.CANCELLED:
            return _cancel(state, None)
        return _change_status(state, command.status)
    return _cancel(state, command.reason)


def is_identifier(value: str) -> bool:
    """Whether a string is a valid order, customer or product id."""
    return isinstance(value, str) and IDENTIFIER.fullmatch(value) is not None


def validate_identifier(field: str, value: str) -> None:
    """Identifiers are 1..64 characters of [A-Za-z0-9._-]."""
    if not is_identifier(value):
        raise InvalidCommand(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'")


def price_to_cents(field: str, price: Decimal) -> int:
    """Convert a decimal price with at most two decimals to integer cents."""
    if not price.is_finite() or price < 0:
        raise InvalidCommand(field, "must be a number >= 0")
    cents = price * 100
    if cents != cents.to_integral_value():
        raise InvalidCommand(field, "must have at most 2 decimal places")
    return int(cents)


def _place(state: Order | None, command: PlaceOrder) -> list[Event]:
    if state is not None:
        raise OrderAlreadyExists(state.order_id, state.version, state.status)
    validate_identifier("order_id", command.order_id)
    validate_identifier("customer_id", command.customer_id)
    if not MIN_LINES <= len(command.lines) <= MAX_LINES:
        raise InvalidCommand("lines", f"must have {MIN_LINES} to {MAX_LINES} lines")
    for index, line in enumerate(command.lines):
        _validate_line(f"lines.{index}", line)
    total = sum(line.amount_cents for line in command.lines)
    return [OrderPlaced(command.order_id, command.customer_id, command.lines, total)]


def _validate_line(prefix: str, line: OrderLine) -> None:
    validate_identifier(f"{prefix}.product_id", line.product_id)
    quantity = line.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidCommand(f"{prefix}.quantity", "must be an integer")
    if not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
        raise InvalidCommand(
            f"{prefix}.quantity", f"must be between {MIN_QUANTITY} and {MAX_QUANTITY}"
        )
    price = line.unit_price_cents
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise InvalidCommand(f"{prefix}.unit_price", "must be a non-negative amount")


def _change_status(state: Order, target: OrderStatus) -> list[Event]:
    _check_transition(state, target)
    return [
        OrderStatusChanged(
            state.order_id, state.customer_id, state.status, target, state.total_cents
        )
    ]


def _cancel(state: Order, reason: str | None) -> list[Event]:
    _check_transition(state, OrderStatus.CANCELLED)
    return [
        OrderCancelled(
            state.order_id, state.customer_id, state.status, state.lines, state.total_cents, reason
        )
    ]


def _check_transition(state: Order, target: OrderStatus) -> None:
    if target not in ALLOWED_TRANSITIONS[state.status]:
        raise InvalidTransition(state.order_id, state.status, target, state.version)
