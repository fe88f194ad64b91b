"""Account and payment rules as given events / when command / then events or error. No I/O."""

from __future__ import annotations

import itertools

import pytest

from command_service.domain import payments
from command_service.domain.account import (
    MAX_DEPOSIT_CENTS,
    Account,
    AccountCommand,
    AccountCredited,
    AccountDebited,
    AccountEvent,
    AccountOpened,
    CreditAccount,
    DebitAccount,
    DepositFunds,
    FundsDeposited,
    OpenAccount,
    account_stream,
    decide,
    evolve,
    load,
)
from command_service.domain.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    InsufficientFunds,
    InvalidCommand,
    InvalidTransition,
    PaymentNeedsAccount,
    PaymentRuleViolated,
)
from command_service.domain.order import (
    CancelOrder,
    ChangeOrderStatus,
    Order,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
)
from command_service.domain.order import load as load_order

OPENED = AccountOpened("c-1")
FUNDED = [OPENED, FundsDeposited("c-1", 5000, 5000)]


def then(given: list[AccountEvent], when: AccountCommand) -> list[AccountEvent]:
    return decide(load(given), when)


# --- opening and deposits -------------------------------------------------------------------


def test_open_account_without_deposit() -> None:
    assert then([], OpenAccount("c-1")) == [OPENED]
    assert load([OPENED]) == Account("c-1", version=1)


def test_open_account_with_initial_deposit_is_two_events() -> None:
    assert then([], OpenAccount("c-1", 2500)) == [OPENED, FundsDeposited("c-1", 2500, 2500)]


def test_an_account_opens_once() -> None:
    with pytest.raises(AccountAlreadyExists):
        then([OPENED], OpenAccount("c-1"))


@pytest.mark.parametrize("customer_id", ["", "a b", "x" * 65, "account:c-1"])
def test_open_account_needs_a_valid_customer_id(customer_id: str) -> None:
    with pytest.raises(InvalidCommand) as error:
        then([], OpenAccount(customer_id))
    assert error.value.field == "customer_id"


@pytest.mark.parametrize("cents", [0, -1, MAX_DEPOSIT_CENTS + 1])
def test_deposit_amount_must_be_positive_and_bounded(cents: int) -> None:
    with pytest.raises(InvalidCommand) as error:
        then([OPENED], DepositFunds("c-1", cents))
    assert error.value.field == "amount"


def test_deposit_adds_to_the_balance_and_says_the_new_balance() -> None:
    events = then(FUNDED, DepositFunds("c-1", 1234, "dep-1"))
    assert events == [FundsDeposited("c-1", 1234, 6234, "dep-1")]
    state = load([*FUNDED, *events])
    assert state is not None
    assert (state.balance_cents, state.deposited_cents, state.version) == (6234, 6234, 3)


def test_deposit_into_a_missing_account_is_refused() -> None:
    with pytest.raises(AccountNotFound):
        then([], DepositFunds("c-1", 100))


def test_a_repeated_deposit_id_with_the_same_amount_deposits_nothing() -> None:
    given = [*FUNDED, FundsDeposited("c-1", 700, 5700, "dep-1")]
    assert then(given, DepositFunds("c-1", 700, "dep-1")) == []


def test_a_repeated_deposit_id_with_another_amount_is_refused() -> None:
    given = [*FUNDED, FundsDeposited("c-1", 700, 5700, "dep-1")]
    with pytest.raises(PaymentRuleViolated) as error:
        then(given, DepositFunds("c-1", 701, "dep-1"))
    assert error.value.field == "deposit_id"


# --- debits and credits ---------------------------------------------------------------------


def test_debit_takes_the_amount_and_names_the_order() -> None:
    assert then(FUNDED, DebitAccount("c-1", "o-1", 2000)) == [
        AccountDebited("c-1", "o-1", 2000, 3000)
    ]


def test_debit_of_the_whole_balance_leaves_zero() -> None:
    assert then(FUNDED, DebitAccount("c-1", "o-1", 5000)) == [AccountDebited("c-1", "o-1", 5000, 0)]


def test_debit_beyond_the_balance_is_refused() -> None:
    with pytest.raises(InsufficientFunds) as error:
        then(FUNDED, DebitAccount("c-1", "o-1", 5001))
    assert (error.value.balance_cents, error.value.amount_cents) == (5000, 5001)


def test_an_order_is_debited_at_most_once() -> None:
    given = [*FUNDED, AccountDebited("c-1", "o-1", 100, 4900)]
    with pytest.raises(PaymentRuleViolated):
        then(given, DebitAccount("c-1", "o-1", 100))


def test_credit_gives_back_exactly_what_was_debited() -> None:
    given = [*FUNDED, AccountDebited("c-1", "o-1", 1500, 3500)]
    assert then(given, CreditAccount("c-1", "o-1")) == [AccountCredited("c-1", "o-1", 1500, 5000)]


def test_an_order_is_refunded_at_most_once() -> None:
    given = [
        *FUNDED,
        AccountDebited("c-1", "o-1", 1500, 3500),
        AccountCredited("c-1", "o-1", 1500, 5000),
    ]
    with pytest.raises(PaymentRuleViolated):
        then(given, CreditAccount("c-1", "o-1"))


def test_an_order_never_debited_is_not_refunded() -> None:
    with pytest.raises(PaymentRuleViolated):
        then(FUNDED, CreditAccount("c-1", "o-9"))


def test_balance_is_deposits_minus_debits_plus_credits() -> None:
    state = load(
        [
            *FUNDED,
            AccountDebited("c-1", "o-1", 1500, 3500),
            FundsDeposited("c-1", 200, 3700),
            AccountDebited("c-1", "o-2", 700, 3000),
            AccountCredited("c-1", "o-1", 1500, 4500),
        ]
    )
    assert state is not None
    assert state.balance_cents == 4500
    assert state.balance_cents == (
        state.deposited_cents - state.debited_cents + state.credited_cents
    )


def test_account_stream_ids_cannot_be_order_ids() -> None:
    assert account_stream("c-1") == "account:c-1"


# --- payments: the order and the account together -------------------------------------------

LINES = (OrderLine("p-1", 2, 1250),)


def order_in(status: OrderStatus) -> Order:
    events: list[OrderPlaced | OrderStatusChanged] = [OrderPlaced("o-1", "c-1", LINES, 2500)]
    path = [OrderStatus.PLACED, OrderStatus.PAID, OrderStatus.SHIPPED]
    for src, dst in itertools.pairwise(path[: path.index(status) + 1]):
        events.append(OrderStatusChanged("o-1", "c-1", src, dst, 2500))
    state = load_order(events)
    assert state is not None and state.status is status
    return state


def test_paying_debits_the_order_total_in_the_same_decision() -> None:
    decision = payments.decide(
        order_in(OrderStatus.PLACED), load(FUNDED), ChangeOrderStatus("o-1", OrderStatus.PAID)
    )
    assert decision.order_events == [
        OrderStatusChanged("o-1", "c-1", OrderStatus.PLACED, OrderStatus.PAID, 2500)
    ]
    assert decision.account_events == [AccountDebited("c-1", "o-1", 2500, 2500)]


def test_paying_without_an_account_is_refused() -> None:
    with pytest.raises(PaymentNeedsAccount):
        payments.decide(
            order_in(OrderStatus.PLACED), None, ChangeOrderStatus("o-1", OrderStatus.PAID)
        )


def test_paying_without_enough_funds_is_refused() -> None:
    poor = load([OPENED, FundsDeposited("c-1", 2499, 2499)])
    with pytest.raises(InsufficientFunds):
        payments.decide(
            order_in(OrderStatus.PLACED), poor, ChangeOrderStatus("o-1", OrderStatus.PAID)
        )


def test_an_invalid_transition_is_reported_before_any_money_question() -> None:
    with pytest.raises(InvalidTransition):
        payments.decide(order_in(OrderStatus.SHIPPED), None, CancelOrder("o-1"))


def test_cancelling_an_unpaid_order_moves_no_money() -> None:
    decision = payments.decide(order_in(OrderStatus.PLACED), load(FUNDED), CancelOrder("o-1"))
    assert isinstance(decision.order_events[0], OrderCancelled)
    assert decision.account_events == []


@pytest.mark.parametrize(
    "command",
    [CancelOrder("o-1", "changed my mind"), ChangeOrderStatus("o-1", OrderStatus.CANCELLED)],
)
def test_cancelling_a_paid_order_credits_the_debit_back(
    command: CancelOrder | ChangeOrderStatus,
) -> None:
    account = load([*FUNDED, AccountDebited("c-1", "o-1", 2500, 2500)])
    decision = payments.decide(order_in(OrderStatus.PAID), account, command)
    assert isinstance(decision.order_events[0], OrderCancelled)
    assert decision.account_events == [AccountCredited("c-1", "o-1", 2500, 5000)]


def test_a_paid_order_without_a_debit_is_cancelled_without_a_refund() -> None:
    # Orders paid before accounts existed: nothing was taken, so nothing is given back.
    decision = payments.decide(order_in(OrderStatus.PAID), load(FUNDED), CancelOrder("o-1"))
    assert decision.account_events == []


def test_folding_an_account_leaves_every_earlier_state_as_it_was() -> None:
    # The debits and deposits maps share storage along a fold (linear, not quadratic), so
    # check that no state ever sees an entry added after it, even when a fold branches.
    opened = load([AccountOpened("c-1"), FundsDeposited("c-1", 9000, 9000, "d-1")])
    assert opened is not None
    one = evolve(opened, AccountDebited("c-1", "o-1", 100, 8900))
    two = evolve(one, AccountDebited("c-1", "o-2", 200, 8700))
    branch = evolve(one, AccountDebited("c-1", "o-3", 300, 8600))
    assert dict(opened.debits) == {}
    assert dict(one.debits) == {"o-1": 100} and "o-2" not in one.debits
    assert dict(two.debits) == {"o-1": 100, "o-2": 200}
    assert dict(branch.debits) == {"o-1": 100, "o-3": 300} and "o-2" not in branch.debits
    assert len(one.debits) == 1 and list(two.debits) == ["o-1", "o-2"]
    assert two.deposits == {"d-1": 9000}
    assert evolve(one, AccountDebited("c-1", "o-2", 200, 8700)) == two


def test_loading_a_long_account_stream_takes_linear_time() -> None:
    events: list[AccountEvent] = [AccountOpened("c-1"), FundsDeposited("c-1", 10**8, 10**8)]
    events += [AccountDebited("c-1", f"o-{n}", 1, 10**8 - n) for n in range(1, 50_001)]
    account = load(events)  # about 0.1 s; copying the map per event took minutes
    assert account is not None and len(account.debits) == 50_000
    assert account.debits["o-50000"] == 1 and account.balance_cents == 10**8 - 50_000
