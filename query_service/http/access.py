"""Who may read what in the query API: the one place its handlers ask (docs/security.md).

read:all reads everything. read:own reads one customer's data, the one its token's
`customer_id` claim names, judged by the customer of the stored row, never by a request field.
Another customer's resource is answered as a missing one (`None` here, a 404 there), so ids
cannot be probed. The route policies (`@requires`) have already let only these scopes in.
"""

from __future__ import annotations

from sqlalchemy import RowMapping

from query_service.read_model.view_types import CustomerView, OrderDetail, OrderHistory
from shared.contract.principal import READ_ALL
from shared.http.auth import current_principal, forbidden


def may_read(customer_id: str) -> bool:
    """Whether the caller may read the data of the customer a stored row belongs to."""
    return current_principal().may_read(customer_id)


def listing_customer(requested: str | None) -> str | None:
    """The customer an order listing is limited to (None: everyone), given ?customer_id=.

    With read:own only, it is the token's customer: ?customer_id= naming anyone else is 403,
    and so is a token without a customer_id claim (it owns nothing; 403 says why, where an
    empty list would hide the misconfigured token).
    """
    principal = current_principal()
    if principal.has(READ_ALL):
        return requested
    own = principal.customer_id
    if own is None or requested not in (None, own):
        raise forbidden(frozenset({READ_ALL}))
    return own


def readable_order(detail: OrderDetail | None) -> OrderDetail | None:
    """The order if the caller may read it (by its customer_id column), else None."""
    if detail is None or not may_read(detail.order["customer_id"]):
        return None
    return detail


def readable_history(history: OrderHistory | None) -> OrderHistory | None:
    """The history if the caller may read its order (by the order row's customer), else None."""
    if history is None or not may_read(history.customer_id):
        return None
    return history


def readable_customer(customer: CustomerView | None) -> CustomerView | None:
    """The customer view if it is the caller's own (or read:all), else None."""
    if customer is None or not may_read(customer.customer_id):
        return None
    return customer


def readable_account(account: RowMapping | None) -> RowMapping | None:
    """The account row if the caller may read it (by its customer_id column), else None."""
    if account is None or not may_read(account["customer_id"]):
        return None
    return account
