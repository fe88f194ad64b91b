"""The pure account projection: given the account's events so far, when the next one comes,
then this account row and statement line, or a refusal (the event is parked).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from query_service.projection.accounts import (
    AccountRow,
    StatementLine,
    project_account,
)
from query_service.projection.events import (
    AccountCredited,
    AccountDebited,
    AccountEvent,
    AccountOpened,
    FundsDeposited,
    UnprojectableEvent,
)
from query_service.projection.orders import Step, next_step

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class AccountHistory:
    """Writes a customer's account events with correct versions, positions and balances."""

    customer_id: str = "c-1"
    events: list[AccountEvent] = field(default_factory=list)
    balance_cents: int = 0

    def opened(self) -> AccountOpened:
        return self._add(AccountOpened(*self._base()))

    def deposited(self, cents: int, deposit_id: str | None = None) -> FundsDeposited:
        self.balance_cents += cents
        return self._add(FundsDeposited(*self._base(), cents, self.balance_cents, deposit_id))

    def debited(self, order_id: str, cents: int) -> AccountDebited:
        self.balance_cents -= cents
        return self._add(AccountDebited(*self._base(), order_id, cents, self.balance_cents))

    def credited(self, order_id: str, cents: int) -> AccountCredited:
        self.balance_cents += cents
        return self._add(AccountCredited(*self._base(), order_id, cents, self.balance_cents))

    def _base(self) -> tuple[str, str, int, int, datetime]:
        version = len(self.events) + 1
        at = T0 + timedelta(minutes=version)
        return f"e-{self.customer_id}-{version}", self.customer_id, version, 100 + version, at

    def _add(self, event: AccountEvent) -> AccountEvent:
        self.events.append(event)
        return event


@dataclass
class Model:
    """An in-memory read model of accounts, applying events as the applier does."""

    accounts: dict[str, AccountRow] = field(default_factory=dict)
    statement: list[StatementLine] = field(default_factory=list)

    def apply(self, event: AccountEvent) -> Step:
        current = self.accounts.get(event.customer_id)
        step = next_step(current.version if current else 0, event.version)
        if step is Step.APPLY:
            changes = project_account(current, event)
            self.accounts[event.customer_id] = changes.account
            if changes.statement_line is not None:
                self.statement.append(changes.statement_line)
        return step


def given(*events: AccountEvent) -> Model:
    model = Model()
    for event in events:
        assert model.apply(event) is Step.APPLY
    return model


def test_opening_creates_an_empty_account_and_no_statement_line() -> None:
    history = AccountHistory()
    opened = history.opened()

    changes = project_account(None, opened)

    assert changes.is_new_account
    assert changes.account == AccountRow(
        "c-1", 0, 0, 0, 0, 1, opened.occurred_at, opened.occurred_at
    )
    assert changes.statement_line is None


def test_a_deposit_raises_the_balance_and_adds_a_positive_line() -> None:
    history = AccountHistory()
    model = given(history.opened())
    deposit = history.deposited(2500, "dep-1")

    changes = project_account(model.accounts["c-1"], deposit)

    assert not changes.is_new_account
    opened_at = T0 + timedelta(minutes=1)
    assert changes.account == AccountRow("c-1", 2500, 2500, 0, 0, 2, opened_at, deposit.occurred_at)
    assert changes.statement_line == StatementLine(
        "c-1", 2, deposit.occurred_at, "DEPOSIT", 2500, 2500, None, "dep-1", "e-c-1-2", 102
    )


def test_a_debit_lowers_the_balance_and_adds_a_negative_line_naming_the_order() -> None:
    history = AccountHistory()
    model = given(history.opened(), history.deposited(2500))
    debit = history.debited("o-7", 1999)

    changes = project_account(model.accounts["c-1"], debit)

    assert (changes.account.balance_cents, changes.account.debited_cents) == (501, 1999)
    assert changes.account.version == 3
    line = changes.statement_line
    assert line is not None
    assert (line.kind, line.amount_cents, line.balance_cents) == ("DEBIT", -1999, 501)
    assert (line.order_id, line.deposit_id) == ("o-7", None)


def test_a_credit_gives_back_and_adds_a_positive_line_naming_the_order() -> None:
    history = AccountHistory()
    model = given(history.opened(), history.deposited(2500), history.debited("o-7", 1999))
    credit = history.credited("o-7", 1999)

    changes = project_account(model.accounts["c-1"], credit)

    assert (changes.account.balance_cents, changes.account.credited_cents) == (2500, 1999)
    line = changes.statement_line
    assert line is not None
    assert (line.kind, line.amount_cents, line.balance_cents, line.order_id) == (
        "CREDIT",
        1999,
        2500,
        "o-7",
    )


def test_the_balance_is_always_deposits_minus_debits_plus_credits() -> None:
    history = AccountHistory()
    model = given(history.opened())
    for n in range(1, 30):
        if n % 3 == 0:
            event: AccountEvent = history.debited(f"o-{n}", min(history.balance_cents, 700 + n))
        elif n % 5 == 0:
            event = history.credited(f"o-{n - 2}", 300)
        else:
            event = history.deposited(100 * n, f"dep-{n}")
        assert model.apply(event) is Step.APPLY
        account = model.accounts["c-1"]
        assert account.balance_cents == (
            account.deposited_cents - account.debited_cents + account.credited_cents
        )
        assert account.balance_cents == sum(line.amount_cents for line in model.statement)
    assert model.accounts["c-1"].balance_cents == history.balance_cents
    assert [line.version for line in model.statement] == list(range(2, 31))


def test_duplicates_are_recognised_by_version_and_change_nothing() -> None:
    history = AccountHistory()
    events = [history.opened(), history.deposited(1000), history.debited("o-1", 400)]
    model = given(*events)
    before = (dict(model.accounts), list(model.statement))

    assert [model.apply(event) for event in events] == [Step.DUPLICATE] * 3

    assert (dict(model.accounts), list(model.statement)) == before


def test_an_event_past_the_next_version_is_a_gap_and_changes_nothing() -> None:
    history = AccountHistory()
    opened, deposit, debit = history.opened(), history.deposited(1000), history.debited("o", 5)
    model = given(opened)

    assert model.apply(debit) is Step.GAP
    assert model.accounts["c-1"].version == 1 and model.statement == []
    assert model.apply(deposit) is Step.APPLY
    assert model.apply(debit) is Step.APPLY
    assert model.accounts["c-1"].balance_cents == 995


def test_project_refuses_an_event_that_is_not_the_next_version() -> None:
    history = AccountHistory()
    opened = history.opened()
    history.deposited(1000)
    debit = history.debited("o-1", 10)
    with pytest.raises(ValueError, match="needs version 2"):
        project_account(project_account(None, opened).account, debit)


@pytest.mark.parametrize("kind", ["deposit", "debit", "credit"])
@pytest.mark.parametrize("error_cents", [-1, 1, 10_000])
def test_a_stated_balance_that_does_not_follow_from_the_last_one_is_unprojectable(
    kind: str, error_cents: int
) -> None:
    history = AccountHistory()
    model = given(history.opened(), history.deposited(5000), history.debited("o-1", 1000))
    event: AccountEvent = {
        "deposit": lambda: history.deposited(250),
        "debit": lambda: history.debited("o-2", 250),
        "credit": lambda: history.credited("o-1", 1000),
    }[kind]()
    assert isinstance(event, FundsDeposited | AccountDebited | AccountCredited)
    wrong = replace(event, balance_cents=event.balance_cents + error_cents)
    before = model.accounts["c-1"]

    with pytest.raises(UnprojectableEvent, match="at version 3, which gives"):
        project_account(before, wrong)
    assert model.apply(event) is Step.APPLY  # the right one still applies afterwards
