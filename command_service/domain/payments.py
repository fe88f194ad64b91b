"""The rules that tie orders to money: paying debits the customer's account, cancelling a paid
order credits it back. Pure: given both aggregates, the events for both streams, or an error.

The caller appends both lists in one transaction with both expected versions, so an order is
never PAID without its debit, nor cancelled without its refund.
"""

from __future__ import annotations

from dataclasses import dataclass

from command_service.domain import account as acc
from command_service.domain import order as ord_
from command_service.domain.errors import PaymentNeedsAccount


@dataclass(frozen=True)
class Decision:
    """Events for the order's stream and for the account's stream (possibly none)."""

    order_events: list[ord_.Event]
    account_events: list[acc.AccountEvent]


def decide(
    order: ord_.Order | None, account: acc.Account | None, command: ord_.Command
) -> Decision:
    """The order's own rules first (a bad transition is reported as such), then the money."""
    order_events = ord_.decide(order, command)
    assert order is not None  # decide() raised for a missing order
    final = order_events[-1]
    if isinstance(final, ord_.OrderStatusChanged) and final.to_status is ord_.OrderStatus.PAID:
        if account is None:
            raise PaymentNeedsAccount(order.customer_id, order.order_id)
        debit = acc.DebitAccount(order.customer_id, order.order_id, order.total_cents)
        return Decision(order_events, acc.decide(account, debit))
    if isinstance(final, ord_.OrderCancelled) and account and _owes_refund(order, account):
        refund = acc.CreditAccount(order.customer_id, order.order_id)
        return Decision(order_events, acc.decide(account, refund))
    return Decision(order_events, [])


def _owes_refund(order: ord_.Order, account: acc.Account) -> bool:
    # Refund exactly what was debited: an order marked PAID without a debit (written before
    # accounts existed) moves no money when cancelled.
    return (
        order.status is ord_.OrderStatus.PAID
        and order.order_id in account.debits
        and order.order_id not in account.credited_orders
    )
