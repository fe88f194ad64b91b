"""Who may do what to which order or account: the command side's one place for that decision.

Ownership is decided against the loaded aggregate (its customer), never against request
fields. A caller who may not even see a resource is told it does not exist, with the same
error as a missing one, so ids cannot be probed.
"""

from __future__ import annotations

from command_service.domain import order as domain
from command_service.domain.errors import AccountNotFound, OrderNotFound
from shared.contract.principal import (
    ACCOUNTS_DEPOSIT,
    ACCOUNTS_WRITE,
    ORDERS_FULFIL,
    ORDERS_WRITE,
    READ_ALL,
    Principal,
)

# Warehouse and staff steps: any order, with orders:fulfil.
FULFILMENT_STATUSES = frozenset({domain.OrderStatus.SHIPPED, domain.OrderStatus.DELIVERED})


class NotPermitted(Exception):
    """The caller is known and may see the resource, but lacks a scope for this action."""

    def __init__(self, scopes: frozenset[str], detail: str) -> None:
        super().__init__(detail)
        self.scopes = scopes
        self.detail = detail


def require_principal(principal: Principal | None) -> Principal:
    """Every command names its caller; one without is refused, never run as nobody."""
    if principal is None:
        raise NotPermitted(frozenset(), "a command without a verified caller is refused")
    return principal


def check_may_place(principal: Principal | None, customer_id: str) -> None:
    """orders:write for one's own customer id (admin: anyone's)."""
    caller = require_principal(principal)
    if not caller.may_act_for(ORDERS_WRITE, customer_id):
        raise NotPermitted(
            frozenset({ORDERS_WRITE}),
            "orders:write allows placing orders only for the token's own customer_id",
        )


def check_may_change(principal: Principal | None, order: domain.Order, target: str | None) -> None:
    """`target` None is a cancellation. Fulfilment needs orders:fulfil; paying and cancelling
    need orders:write on one's own order."""
    caller = require_principal(principal)
    check_may_see_order(caller, order)
    if target in FULFILMENT_STATUSES:
        if not caller.has(ORDERS_FULFIL):
            raise NotPermitted(frozenset({ORDERS_FULFIL}), f"setting {target} needs orders:fulfil")
    elif not caller.may_act_for(ORDERS_WRITE, order.customer_id):
        raise NotPermitted(
            frozenset({ORDERS_WRITE}), "paying or cancelling needs orders:write on your own order"
        )


def check_may_see_order(principal: Principal, order: domain.Order) -> None:
    """Owners, read:all and fulfilment staff see an order; to anyone else it does not exist."""
    if not (
        principal.owns(order.customer_id) or principal.has(READ_ALL) or principal.has(ORDERS_FULFIL)
    ):
        raise OrderNotFound(order.order_id)


def check_may_read_order(principal: Principal | None, order: domain.Order) -> None:
    """GET: read:own on one's own order, read:all on any."""
    if principal is None or not principal.may_read(order.customer_id):
        raise OrderNotFound(order.order_id)


def check_may_open(principal: Principal | None, customer_id: str, initial_cents: int) -> None:
    """accounts:write opens one's own account (admin: anyone's); a first deposit with it is
    a deposit, so it needs accounts:deposit as well."""
    caller = require_principal(principal)
    if not caller.may_act_for(ACCOUNTS_WRITE, customer_id):
        raise NotPermitted(
            frozenset({ACCOUNTS_WRITE}),
            "accounts:write allows opening only the token's own customer's account",
        )
    if initial_cents > 0 and not caller.has(ACCOUNTS_DEPOSIT):
        raise NotPermitted(
            frozenset({ACCOUNTS_DEPOSIT}),
            "an initial deposit creates money: it needs accounts:deposit; open the account "
            "without one and let the payment gateway deposit",
        )


def check_may_deposit(principal: Principal | None) -> None:
    """accounts:deposit (the payment gateway) deposits into any account: deposits create money."""
    if not require_principal(principal).has(ACCOUNTS_DEPOSIT):
        raise NotPermitted(frozenset({ACCOUNTS_DEPOSIT}), "deposits need accounts:deposit")


def check_may_read_account(principal: Principal | None, customer_id: str) -> None:
    """GET: read:own on one's own account, read:all on any."""
    if principal is None or not principal.may_read(customer_id):
        raise AccountNotFound(customer_id)
