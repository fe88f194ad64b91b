"""What the command service reads from its event log: state folded from the events (strongly
consistent, now or as of a version or time), and the stored events themselves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

Json = Mapping[str, Any]


@dataclass(frozen=True)
class OrderStateLine:
    """One line of an order rebuilt from its events."""

    product_id: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True)
class OrderState:
    """An order folded from its events by the command service."""

    order_id: str
    customer_id: str
    status: str
    version: int
    total_cents: int
    currency: str
    lines: tuple[OrderStateLine, ...]

    @classmethod
    def from_json(cls, body: Json) -> OrderState:
        lines = tuple(
            OrderStateLine(line["product_id"], line["quantity"], line["unit_price_cents"])
            for line in body["lines"]
        )
        return cls(
            body["order_id"],
            body["customer_id"],
            body["status"],
            body["version"],
            body["total_cents"],
            body["currency"],
            lines,
        )


@dataclass(frozen=True)
class AccountState:
    """An account folded from its events by the command service."""

    customer_id: str
    version: int
    balance_cents: int
    deposited_cents: int
    debited_cents: int
    credited_cents: int

    @classmethod
    def from_json(cls, body: Json) -> AccountState:
        return cls(
            body["customer_id"],
            body["version"],
            body["balance_cents"],
            body["deposited_cents"],
            body["debited_cents"],
            body["credited_cents"],
        )


@dataclass(frozen=True)
class StoredEvent:
    """One event as stored and published (`data` as stored: consumers upcast)."""

    event_id: str
    type: str
    stream_id: str
    version: int
    position: int
    occurred_at: datetime
    schema_version: int
    data: Mapping[str, Any]
    metadata: Mapping[str, Any]

    @classmethod
    def from_json(cls, body: Json) -> StoredEvent:
        return cls(
            body["event_id"],
            body["type"],
            body["stream_id"],
            body["version"],
            body["position"],
            datetime.fromisoformat(str(body["occurred_at"]).replace("Z", "+00:00")),
            body["schema_version"],
            dict(body["data"]),
            dict(body["metadata"]),
        )


@dataclass(frozen=True)
class EventsPage:
    """A page of the whole log in position order; pass `next_after` for the next one."""

    events: tuple[StoredEvent, ...]
    next_after: int
    has_more: bool

    @classmethod
    def from_json(cls, body: Json) -> EventsPage:
        events = tuple(StoredEvent.from_json(e) for e in body["events"])
        return cls(events, body["next_after"], body["has_more"])
