"""What the query service's read model answers (eventually consistent), as frozen dataclasses.

Money is integer cents, times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Json = Mapping[str, Any]


def _time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass(frozen=True)
class OrderLine:
    """One line of an order as the read model has it."""

    line_no: int
    product_id: str
    quantity: int
    unit_price_cents: int
    amount_cents: int

    @classmethod
    def from_json(cls, body: Json) -> OrderLine:
        return cls(
            body["line_no"],
            body["product_id"],
            body["quantity"],
            body["unit_price_cents"],
            body["amount_cents"],
        )


@dataclass(frozen=True)
class OrderSummary:
    """An order as listed by the query service."""

    order_id: str
    customer_id: str
    status: str
    version: int
    line_count: int
    total_quantity: int
    total_cents: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, body: Json) -> OrderSummary:
        return cls(**_summary_fields(body))


def _summary_fields(body: Json) -> dict[str, Any]:
    return {
        "order_id": body["order_id"],
        "customer_id": body["customer_id"],
        "status": body["status"],
        "version": body["version"],
        "line_count": body["line_count"],
        "total_quantity": body["total_quantity"],
        "total_cents": body["total_cents"],
        "created_at": _time(body["created_at"]),
        "updated_at": _time(body["updated_at"]),
    }


@dataclass(frozen=True)
class Order(OrderSummary):
    """An order with its lines, from the query service (eventually consistent)."""

    lines: tuple[OrderLine, ...] = ()

    @classmethod
    def from_json(cls, body: Json) -> Order:
        lines = tuple(OrderLine.from_json(line) for line in body["lines"])
        return cls(**_summary_fields(body), lines=lines)


@dataclass(frozen=True)
class OrderPage:
    """A page of orders, newest first; pass `next_cursor` for the next (None: the last)."""

    orders: tuple[OrderSummary, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, body: Json) -> OrderPage:
        orders = tuple(OrderSummary.from_json(o) for o in body["orders"])
        return cls(orders, body["next_cursor"])


@dataclass(frozen=True)
class Actor:
    """Who caused an event: the token's subject, issuer, customer and client."""

    sub: str
    iss: str | None
    customer_id: str | None
    client_id: str | None


@dataclass(frozen=True)
class HistoryEntry:
    """One applied event of an order, and who caused it (None before principals were kept)."""

    version: int
    type: str
    occurred_at: datetime
    summary: str
    event_id: str
    position: int
    by: Actor | None

    @classmethod
    def from_json(cls, body: Json) -> HistoryEntry:
        by = body.get("by")
        actor = Actor(by["sub"], by["iss"], by["customer_id"], by["client_id"]) if by else None
        return cls(
            body["version"],
            body["type"],
            _time(body["occurred_at"]),
            body["summary"],
            body["event_id"],
            body["position"],
            actor,
        )


@dataclass(frozen=True)
class OrderHistory:
    """An order's events as the projection applied them, oldest first."""

    order_id: str
    version: int
    entries: tuple[HistoryEntry, ...]

    @classmethod
    def from_json(cls, body: Json) -> OrderHistory:
        entries = tuple(HistoryEntry.from_json(e) for e in body["history"])
        return cls(body["order_id"], body["version"], entries)


@dataclass(frozen=True)
class Customer:
    """A customer's order counts, the total of its orders not cancelled, and its balance."""

    customer_id: str
    order_count: int
    orders_by_status: Mapping[str, int]
    total_cents: int
    balance_cents: int | None  # None: no account

    @classmethod
    def from_json(cls, body: Json) -> Customer:
        account = body.get("account")
        return cls(
            body["customer_id"],
            body["order_count"],
            dict(body["orders_by_status"]),
            body["total_cents"],
            account["balance_cents"] if account else None,
        )


@dataclass(frozen=True)
class Account:
    """An account from the query service: balance = deposited - debited + credited."""

    customer_id: str
    version: int
    balance_cents: int
    deposited_cents: int
    debited_cents: int
    credited_cents: int
    opened_at: datetime
    updated_at: datetime

    @classmethod
    def from_json(cls, body: Json) -> Account:
        return cls(
            body["customer_id"],
            body["version"],
            body["balance_cents"],
            body["deposited_cents"],
            body["debited_cents"],
            body["credited_cents"],
            _time(body["opened_at"]),
            _time(body["updated_at"]),
        )


@dataclass(frozen=True)
class StatementLine:
    """One money movement; `amount_cents` is signed (a debit is negative)."""

    version: int
    occurred_at: datetime
    kind: str
    amount_cents: int
    balance_cents: int
    order_id: str | None
    deposit_id: str | None

    @classmethod
    def from_json(cls, body: Json) -> StatementLine:
        return cls(
            body["version"],
            _time(body["occurred_at"]),
            body["kind"],
            body["amount_cents"],
            body["balance_cents"],
            body["order_id"],
            body["deposit_id"],
        )


@dataclass(frozen=True)
class Statement:
    """A page of an account's statement, oldest first (`next_cursor` None: the last page)."""

    customer_id: str
    lines: tuple[StatementLine, ...]
    next_cursor: str | None

    @classmethod
    def from_json(cls, body: Json) -> Statement:
        lines = tuple(StatementLine.from_json(line) for line in body["lines"])
        return cls(body["customer_id"], lines, body["next_cursor"])


@dataclass(frozen=True)
class ProductSales:
    """A product's sales over the orders not cancelled."""

    product_id: str
    units_sold: int
    amount_cents: int
    order_count: int

    @classmethod
    def from_json(cls, body: Json) -> ProductSales:
        return cls(
            body["product_id"], body["units_sold"], body["amount_cents"], body["order_count"]
        )
