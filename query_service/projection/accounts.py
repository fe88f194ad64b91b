"""Pure projection of account events: (current account row, event) -> the row changes it causes.

Every money event states the balance after it; applying it checks that the balance before,
plus or minus the amount, gives that balance. So the read model's balance always equals
deposits - debits + credits, and an event that would break that is unprojectable (parked).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from query_service.projection.events import (
    AccountCredited,
    AccountDebited,
    AccountEvent,
    AccountOpened,
    FundsDeposited,
    UnprojectableEvent,
)
from query_service.projection.orders import Step, format_cents, next_step

DEPOSIT, DEBIT, CREDIT = "DEPOSIT", "DEBIT", "CREDIT"


# Rows are named tuples in their table's column order, changes a plain dataclass: see OrderRow.
class AccountRow(NamedTuple):
    """A row of the accounts table; `version` is the last applied version of the account."""

    customer_id: str
    balance_cents: int
    deposited_cents: int
    debited_cents: int
    credited_cents: int
    version: int
    opened_at: datetime
    updated_at: datetime


class StatementLine(NamedTuple):
    """A row of the account_statement table: one per money event, amount signed (+in, -out)."""

    customer_id: str
    version: int
    occurred_at: datetime
    kind: str
    amount_cents: int
    balance_cents: int
    order_id: str | None
    deposit_id: str | None
    event_id: str
    position: int


@dataclass
class AccountChanges:
    """Everything one account event changes: the account row (insert when new), a statement line."""

    account: AccountRow
    is_new_account: bool
    statement_line: StatementLine | None  # AccountOpened moves no money


def project_account(current: AccountRow | None, event: AccountEvent) -> AccountChanges:
    """The changes of an event whose version is the next one for its account."""
    applied = current.version if current else 0
    if next_step(applied, event.version) is not Step.APPLY:
        raise ValueError(f"project_account() needs version {applied + 1}, got {event.version}")
    if isinstance(event, AccountOpened):
        return _opened(event)
    if current is None:  # unreachable: version 1 is always AccountOpened (see events.py)
        raise UnprojectableEvent(f"{type(event).__name__} for unknown account {event.customer_id}")
    deposited, debited, credited = (
        current.deposited_cents,
        current.debited_cents,
        current.credited_cents,
    )
    if isinstance(event, FundsDeposited):
        line = _line(event, DEPOSIT, event.amount_cents, None, event.deposit_id)
        deposited += event.amount_cents
    elif isinstance(event, AccountDebited):
        line = _line(event, DEBIT, -event.amount_cents, event.order_id, None)
        debited += event.amount_cents
    else:
        line = _line(event, CREDIT, event.amount_cents, event.order_id, None)
        credited += event.amount_cents
    _expect_balance(current, line)
    account = AccountRow(
        customer_id=current.customer_id,
        balance_cents=line.balance_cents,
        deposited_cents=deposited,
        debited_cents=debited,
        credited_cents=credited,
        version=event.version,
        opened_at=current.opened_at,
        updated_at=event.occurred_at,
    )
    return AccountChanges(account, is_new_account=False, statement_line=line)


def _opened(event: AccountOpened) -> AccountChanges:
    account = AccountRow(
        customer_id=event.customer_id,
        balance_cents=0,
        deposited_cents=0,
        debited_cents=0,
        credited_cents=0,
        version=event.version,
        opened_at=event.occurred_at,
        updated_at=event.occurred_at,
    )
    return AccountChanges(account, is_new_account=True, statement_line=None)


def _line(
    event: FundsDeposited | AccountDebited | AccountCredited,
    kind: str,
    signed_cents: int,
    order_id: str | None,
    deposit_id: str | None,
) -> StatementLine:
    return StatementLine(
        customer_id=event.customer_id,
        version=event.version,
        occurred_at=event.occurred_at,
        kind=kind,
        amount_cents=signed_cents,
        balance_cents=event.balance_cents,
        order_id=order_id,
        deposit_id=deposit_id,
        event_id=event.event_id,
        position=event.position,
    )


def _expect_balance(current: AccountRow, line: StatementLine) -> None:
    expected = current.balance_cents + line.amount_cents
    if line.balance_cents != expected:
        raise UnprojectableEvent(
            f"{line.kind.lower()} of {format_cents(abs(line.amount_cents))} states balance "
            f"{format_cents(line.balance_cents)}, but account {current.customer_id} holds "
            f"{format_cents(current.balance_cents)} at version {current.version}, "
            f"which gives {format_cents(expected)}"
        )
