"""The Account aggregate as a decider: a customer's money, moved only by events.

Money is integer cents. Every movement is an event carrying the balance after it, so
balance = deposits - debits + credits holds by construction, and the rules below keep it
non-negative and make each order's debit and refund happen at most once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import reduce
from types import MappingProxyType

from command_service.domain.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    InsufficientFunds,
    InvalidCommand,
    PaymentRuleViolated,
)
from command_service.domain.growing_map import with_entry
from command_service.domain.order import validate_identifier

MAX_DEPOSIT_CENTS = 100_000_000  # 1,000,000.00 per deposit: a typo guard, not a business limit
STREAM_PREFIX = "account:"


def account_stream(customer_id: str) -> str:
    """The event-log stream of a customer's account; ':' never occurs in an order id."""
    return STREAM_PREFIX + customer_id


# --- commands -----------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenAccount:
    """Open the customer's account, optionally with a first deposit."""

    customer_id: str
    initial_deposit_cents: int = 0


@dataclass(frozen=True)
class DepositFunds:
    """Add money; a client-chosen deposit_id makes a retried deposit count once."""

    customer_id: str
    amount_cents: int
    deposit_id: str | None = None


@dataclass(frozen=True)
class DebitAccount:
    """Take an order's total when the order is paid."""

    customer_id: str
    order_id: str
    amount_cents: int


@dataclass(frozen=True)
class CreditAccount:
    """Give back what an order was debited when the paid order is cancelled."""

    customer_id: str
    order_id: str


AccountCommand = OpenAccount | DepositFunds | DebitAccount | CreditAccount


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountOpened:
    """A customer's account exists, with a zero balance."""

    customer_id: str


@dataclass(frozen=True)
class FundsDeposited:
    """Money came in; balance_cents is the balance after it."""

    customer_id: str
    amount_cents: int
    balance_cents: int
    deposit_id: str | None = None


@dataclass(frozen=True)
class AccountDebited:
    """An order was paid from the account."""

    customer_id: str
    order_id: str
    amount_cents: int
    balance_cents: int


@dataclass(frozen=True)
class AccountCredited:
    """A paid order was cancelled and its amount given back."""

    customer_id: str
    order_id: str
    amount_cents: int
    balance_cents: int


AccountEvent = AccountOpened | FundsDeposited | AccountDebited | AccountCredited


# --- state --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """A customer's account, folded from its events."""

    customer_id: str
    balance_cents: int = 0
    deposited_cents: int = 0
    debited_cents: int = 0
    credited_cents: int = 0
    version: int = 1
    # order id -> amount debited; and the orders refunded. Both only grow.
    debits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    credited_orders: frozenset[str] = frozenset()
    deposits: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))


def evolve(state: Account | None, event: AccountEvent) -> Account:
    """Fold one event into the state; events are facts, so this never rejects."""
    if isinstance(event, AccountOpened):
        return Account(event.customer_id)
    if state is None:
        raise ValueError(f"{type(event).__name__} before AccountOpened for {event.customer_id}")
    version = state.version + 1
    if isinstance(event, FundsDeposited):
        deposits = state.deposits
        if event.deposit_id is not None:
            deposits = with_entry(deposits, event.deposit_id, event.amount_cents)
        return replace(
            state,
            balance_cents=state.balance_cents + event.amount_cents,
            deposited_cents=state.deposited_cents + event.amount_cents,
            deposits=deposits,
            version=version,
        )
    if isinstance(event, AccountDebited):
        return replace(
            state,
            balance_cents=state.balance_cents - event.amount_cents,
            debited_cents=state.debited_cents + event.amount_cents,
            debits=with_entry(state.debits, event.order_id, event.amount_cents),
            version=version,
        )
    return replace(
        state,
        balance_cents=state.balance_cents + event.amount_cents,
        credited_cents=state.credited_cents + event.amount_cents,
        credited_orders=state.credited_orders | {event.order_id},
        version=version,
    )


def load(events: Iterable[AccountEvent]) -> Account | None:
    """Rebuild an account from its stream (None for an empty stream)."""
    return reduce(evolve, events, None)


def decide(state: Account | None, command: AccountCommand) -> list[AccountEvent]:
    """Check a command against the account and return the events it causes."""
    if isinstance(command, OpenAccount):
        return _open(state, command)
    if state is None:
        raise AccountNotFound(command.customer_id)
    if isinstance(command, DepositFunds):
        return _deposit(state, command)
    if isinstance(command, DebitAccount):
        return _debit(state, command)
    return _credit(state, command)


def deposit_replayed(state: Account, command: DepositFunds) -> bool:
    """True if this deposit_id was already deposited with this amount (a safe retry)."""
    if command.deposit_id is None or command.deposit_id not in state.deposits:
        return False
    if state.deposits[command.deposit_id] != command.amount_cents:
        raise PaymentRuleViolated(
            "deposit_id",
            f"deposit {command.deposit_id!r} was already made with another amount "
            f"({_money(state.deposits[command.deposit_id])})",
        )
    return True


def _open(state: Account | None, command: OpenAccount) -> list[AccountEvent]:
    if state is not None:
        raise AccountAlreadyExists(state.customer_id, state.version, state.balance_cents)
    validate_identifier("customer_id", command.customer_id)
    events: list[AccountEvent] = [AccountOpened(command.customer_id)]
    if command.initial_deposit_cents:
        _check_deposit_amount("initial_deposit", command.initial_deposit_cents, allow_zero=True)
        events.append(
            FundsDeposited(
                command.customer_id,
                command.initial_deposit_cents,
                command.initial_deposit_cents,
            )
        )
    return events


def _deposit(state: Account, command: DepositFunds) -> list[AccountEvent]:
    _check_deposit_amount("amount", command.amount_cents, allow_zero=False)
    if command.deposit_id is not None:
        validate_identifier("deposit_id", command.deposit_id)
        if deposit_replayed(state, command):
            return []
    balance = state.balance_cents + command.amount_cents
    return [FundsDeposited(state.customer_id, command.amount_cents, balance, command.deposit_id)]


def _debit(state: Account, command: DebitAccount) -> list[AccountEvent]:
    if command.order_id in state.debits:
        raise PaymentRuleViolated(
            "order_id", f"order {command.order_id!r} was already debited from this account"
        )
    if command.amount_cents < 0:
        raise InvalidCommand("amount", "must not be negative")
    if command.amount_cents > state.balance_cents:
        raise InsufficientFunds(
            state.customer_id, command.order_id, state.balance_cents, command.amount_cents
        )
    balance = state.balance_cents - command.amount_cents
    return [AccountDebited(state.customer_id, command.order_id, command.amount_cents, balance)]


def _credit(state: Account, command: CreditAccount) -> list[AccountEvent]:
    if command.order_id not in state.debits:
        raise PaymentRuleViolated(
            "order_id", f"order {command.order_id!r} was never debited from this account"
        )
    if command.order_id in state.credited_orders:
        raise PaymentRuleViolated(
            "order_id", f"order {command.order_id!r} was already refunded to this account"
        )
    amount = state.debits[command.order_id]
    balance = state.balance_cents + amount
    return [AccountCredited(state.customer_id, command.order_id, amount, balance)]


def _check_deposit_amount(field_name: str, cents: int, allow_zero: bool) -> None:
    if isinstance(cents, bool) or not isinstance(cents, int):
        raise InvalidCommand(field_name, "must be an amount in cents")
    low = 0 if allow_zero else 1
    if not low <= cents <= MAX_DEPOSIT_CENTS:
        raise InvalidCommand(
            field_name, f"must be between {_money(low)} and {_money(MAX_DEPOSIT_CENTS)}"
        )


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"
