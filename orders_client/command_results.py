"""What commands take and return: order lines to place, and the results of accepted commands.

Money is integer cents. A result says the stream's new `version` (pass it as `min_version` to
read your own write) and the event's log `position`; `replayed` is true when the service
answered with the stored result of an earlier request with the same Idempotency-Key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Json = Mapping[str, Any]


@dataclass(frozen=True)
class LineItem:
    """One line of an order to place."""

    product_id: str
    quantity: int
    unit_price_cents: int

    def to_json(self) -> dict[str, Any]:
        """The request's line; the API takes the price as a decimal string."""
        whole, cents = divmod(self.unit_price_cents, 100)
        return {
            "product_id": self.product_id,
            "quantity": self.quantity,
            "unit_price": f"{whole}.{cents:02d}",
        }


@dataclass(frozen=True)
class AccountMovement:
    """Money a status change moved in the same append: a debit (pay) or a credit (refund)."""

    customer_id: str
    version: int
    movement: str
    amount_cents: int
    balance_cents: int

    @classmethod
    def from_json(cls, body: Json) -> AccountMovement:
        return cls(
            body["customer_id"],
            body["version"],
            body["movement"],
            body["amount_cents"],
            body["balance_cents"],
        )


@dataclass(frozen=True)
class CommandResult:
    """An accepted order command: the order's new version, its log position and status."""

    order_id: str
    version: int
    position: int
    status: str
    account: AccountMovement | None = None
    replayed: bool = False  # the answer stored for this Idempotency-Key (a retry)

    @classmethod
    def from_json(cls, body: Json, replayed: bool) -> CommandResult:
        account = body.get("account")
        return cls(
            body["order_id"],
            body["version"],
            body["position"],
            body["status"],
            AccountMovement.from_json(account) if account is not None else None,
            replayed,
        )


@dataclass(frozen=True)
class AccountResult:
    """An accepted account command (open, deposit): the new version, position and balance."""

    customer_id: str
    version: int
    position: int
    balance_cents: int
    replayed: bool = False

    @classmethod
    def from_json(cls, body: Json, replayed: bool) -> AccountResult:
        return cls(
            body["customer_id"], body["version"], body["position"], body["balance_cents"], replayed
        )
