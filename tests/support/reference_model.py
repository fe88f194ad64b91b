"""The reference answer every query view must converge to: orders, customers, product sales and
accounts folded straight from the event log, checking the log's own consistency on the way.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.contract.envelope import EventEnvelope

ACCOUNT_STREAM_PREFIX = "account:"


@dataclass
class ExpectedOrder:
    """An order as its events say it is."""

    customer_id: str
    status: str
    version: int
    total_cents: int
    line_count: int
    total_quantity: int
    lines: list[dict[str, Any]]
    event_types: list[str] = field(default_factory=list)


@dataclass
class ExpectedAccount:
    """An account as its events say it is, with its statement lines."""

    version: int = 0
    balance_cents: int = 0
    deposited_cents: int = 0
    debited_cents: int = 0
    credited_cents: int = 0
    # (version, kind, signed amount, balance after, order id)
    statement: list[tuple[int, str, int, int, str | None]] = field(default_factory=list)

    def apply(self, envelope: EventEnvelope) -> None:
        """Fold one event, checking the log's own arithmetic as it goes."""
        assert envelope.version == self.version + 1, f"log gap or repeat: {envelope}"
        self.version = envelope.version
        data = envelope.data
        if envelope.type == "AccountOpened":
            return
        amount = data["amount_cents"]
        if envelope.type == "FundsDeposited":
            kind, signed = "DEPOSIT", amount
            self.deposited_cents += amount
        elif envelope.type == "AccountDebited":
            kind, signed = "DEBIT", -amount
            self.debited_cents += amount
        else:
            kind, signed = "CREDIT", amount
            self.credited_cents += amount
        self.balance_cents += signed
        assert self.balance_cents >= 0, f"negative balance in the log: {envelope}"
        assert data["balance_cents"] == self.balance_cents, f"balance mismatch: {envelope}"
        self.statement.append(
            (self.version, kind, signed, self.balance_cents, data.get("order_id"))
        )


@dataclass
class ExpectedViews:
    """What each query view must show, computed from the event log alone."""

    orders: dict[str, ExpectedOrder]
    customers: dict[str, dict[str, Any]]
    products: dict[str, dict[str, int]]
    accounts: dict[str, ExpectedAccount] = field(default_factory=dict)

    @classmethod
    def fold(cls, envelopes: Iterable[EventEnvelope]) -> ExpectedViews:
        """Fold the log; also checks the log itself: versions 1..n per stream, no repeats."""
        result: dict[str, ExpectedOrder] = {}
        accounts: dict[str, ExpectedAccount] = {}
        for envelope in envelopes:
            data = envelope.data
            if envelope.stream_id.startswith(ACCOUNT_STREAM_PREFIX):
                accounts.setdefault(data["customer_id"], ExpectedAccount()).apply(envelope)
                continue
            if envelope.type == "OrderPlaced":
                assert envelope.stream_id not in result, f"placed twice: {envelope.stream_id}"
                order = result[envelope.stream_id] = ExpectedOrder(
                    customer_id=data["customer_id"],
                    status="PLACED",
                    version=0,
                    total_cents=data["total_cents"],
                    line_count=len(data["lines"]),
                    total_quantity=sum(line["quantity"] for line in data["lines"]),
                    lines=data["lines"],
                )
            else:
                order = result[envelope.stream_id]
                order.status = (
                    "CANCELLED" if envelope.type == "OrderCancelled" else data["to_status"]
                )
            assert envelope.version == order.version + 1, f"log gap or repeat: {envelope}"
            order.version = envelope.version
            order.event_types.append(envelope.type)

        customers: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"order_count": 0, "total_cents": 0, "by_status": Counter()}
        )
        products: dict[str, dict[str, int]] = defaultdict(
            lambda: {"units_sold": 0, "amount_cents": 0, "order_count": 0}
        )
        for order in result.values():
            customer = customers[order.customer_id]
            customer["order_count"] += 1
            customer["by_status"][order.status] += 1
            live = order.status != "CANCELLED"
            customer["total_cents"] += order.total_cents if live else 0
            for product_id in {line["product_id"] for line in order.lines}:
                sales = products[product_id]
                if live:
                    mine = [line for line in order.lines if line["product_id"] == product_id]
                    sales["units_sold"] += sum(line["quantity"] for line in mine)
                    sales["amount_cents"] += sum(line["amount_cents"] for line in mine)
                    sales["order_count"] += 1
        for customer_id, account in accounts.items():
            # Every debit pays a live order; every credit refunds a cancelled one, once.
            debited = {line[4] for line in account.statement if line[1] == "DEBIT"}
            credited = [line[4] for line in account.statement if line[1] == "CREDIT"]
            assert len(credited) == len(set(credited)) and set(credited) <= debited
            for order_id in debited:
                assert order_id is not None and result[order_id].customer_id == customer_id
                refunded = order_id in credited
                assert refunded == (result[order_id].status == "CANCELLED"), order_id
        return cls(result, dict(customers), dict(products), accounts)
