"""JSON shapes of aggregate states for snapshots, and how each state is folded from events."""

from __future__ import annotations

from collections.abc import Iterable
from functools import reduce
from types import MappingProxyType
from typing import Any

from command_service.adapters.event_codec import decode, decode_account
from command_service.application.snapshots import StateCodec
from command_service.domain import account as account_domain
from command_service.domain import order as order_domain
from shared.contract.envelope import EventEnvelope


def _fold_order(
    events: Iterable[EventEnvelope], start: order_domain.Order | None
) -> order_domain.Order | None:
    return reduce(order_domain.evolve, (decode(e) for e in events), start)


def _order_to_json(state: order_domain.Order) -> dict[str, Any]:
    return {
        "order_id": state.order_id,
        "customer_id": state.customer_id,
        "lines": [[ln.product_id, ln.quantity, ln.unit_price_cents] for ln in state.lines],
        "total_cents": state.total_cents,
        "status": state.status.value,
        "version": state.version,
        "currency": state.currency,
    }


def _order_from_json(raw: dict[str, Any]) -> order_domain.Order:
    return order_domain.Order(
        order_id=raw["order_id"],
        customer_id=raw["customer_id"],
        lines=tuple(order_domain.OrderLine(p, q, c) for p, q, c in raw["lines"]),
        total_cents=raw["total_cents"],
        status=order_domain.OrderStatus(raw["status"]),
        version=raw["version"],
        currency=raw["currency"],
    )


def _fold_account(
    events: Iterable[EventEnvelope], start: account_domain.Account | None
) -> account_domain.Account | None:
    return reduce(account_domain.evolve, (decode_account(e) for e in events), start)


def _account_to_json(state: account_domain.Account) -> dict[str, Any]:
    return {
        "customer_id": state.customer_id,
        "balance_cents": state.balance_cents,
        "deposited_cents": state.deposited_cents,
        "debited_cents": state.debited_cents,
        "credited_cents": state.credited_cents,
        "version": state.version,
        "debits": dict(state.debits),
        "credited_orders": sorted(state.credited_orders),
        "deposits": dict(state.deposits),
    }


def _account_from_json(raw: dict[str, Any]) -> account_domain.Account:
    return account_domain.Account(
        customer_id=raw["customer_id"],
        balance_cents=raw["balance_cents"],
        deposited_cents=raw["deposited_cents"],
        debited_cents=raw["debited_cents"],
        credited_cents=raw["credited_cents"],
        version=raw["version"],
        debits=MappingProxyType(dict(raw["debits"])),
        credited_orders=frozenset(raw["credited_orders"]),
        deposits=MappingProxyType(dict(raw["deposits"])),
    )


ORDER_STATE: StateCodec[order_domain.Order] = StateCodec(
    "order/2", _fold_order, lambda s: s.version, _order_to_json, _order_from_json
)
ACCOUNT_STATE: StateCodec[account_domain.Account] = StateCodec(
    "account/1", _fold_account, lambda s: s.version, _account_to_json, _account_from_json
)
