"""Property: whatever the sequence of deposits, placements, payments and cancellations, the
domain never creates, loses or double-spends money. Pure domain, no I/O.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from hypothesis import example, given, settings
from hypothesis import strategies as st

from command_service.domain import account as acc
from command_service.domain import order as ord_
from command_service.domain import payments
from command_service.domain.errors import DomainError

CUSTOMERS = ("c-0", "c-1")
PAID_STATUSES = (ord_.OrderStatus.PAID, ord_.OrderStatus.SHIPPED, ord_.OrderStatus.DELIVERED)

# Weighted towards what moves money; "open" mostly fails (already open), as it should.
KINDS = ("open", "deposit", "place", "place", "pay", "pay", "pay", "ship", "cancel", "cancel")
KINDS += ("deliver",)

# One step of a random history: (kind, customer index or order index, amount in cents).
steps = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 3),
        # Few, close amounts, so that "exactly enough" and "one cent short" come up often.
        st.sampled_from([0, 1, 300, 301, 600]),
    ),
    min_size=3,
    max_size=40,
)


@dataclass
class World:
    """Every stream's events, kept only by appending what the domain decided."""

    orders: dict[str, list[ord_.Event]] = field(default_factory=dict)
    accounts: dict[str, list[acc.AccountEvent]] = field(default_factory=dict)

    def order(self, order_id: str) -> ord_.Order | None:
        return ord_.load(self.orders.get(order_id, []))

    def account(self, customer_id: str) -> acc.Account | None:
        return acc.load(self.accounts.get(customer_id, []))

    def apply(self, kind: str, n: int, cents: int) -> None:
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        order_id = f"o-{n}"
        if kind == "open":
            self.accounts[customer] = acc.decide(
                self.account(customer), acc.OpenAccount(customer, cents)
            )
        elif kind == "deposit":
            self._account_events(customer, acc.DepositFunds(customer, cents))
        elif kind == "place":
            lines = (ord_.OrderLine("p-1", 1, cents),)
            command = ord_.PlaceOrder(order_id, customer, lines)
            self.orders[order_id] = ord_.decide(self.order(order_id), command)
        else:
            self._order_command(order_id, kind)

    def _account_events(self, customer: str, command: acc.AccountCommand) -> None:
        events = acc.decide(self.account(customer), command)
        self.accounts[customer] += events

    def _order_command(self, order_id: str, kind: str) -> None:
        order = self.order(order_id)
        command: ord_.Command
        if kind == "cancel":
            command = ord_.CancelOrder(order_id)
        else:
            target = {"pay": "PAID", "ship": "SHIPPED", "deliver": "DELIVERED"}[kind]
            command = ord_.ChangeOrderStatus(order_id, ord_.OrderStatus(target))
        customer = order.customer_id if order else None
        decision = payments.decide(order, self.account(customer) if customer else None, command)
        # As one append: both lists, or (when decide raised) neither.
        self.orders[order_id] += decision.order_events
        if decision.account_events:
            assert customer is not None
            self.accounts[customer] += decision.account_events


# Each customer starts with an account holding one of these, or (None) without one.
openings = st.tuples(*(st.sampled_from([None, 0, 300, 600]) for _ in CUSTOMERS))


@settings(max_examples=500, deadline=None)
@given(steps, openings)
# A history that surely pays, refunds, ships and runs out of money (n=0 and n=2 are c-0's).
@example(
    [
        ("open", 0, 1000),
        ("place", 0, 600),
        ("place", 2, 301),
        ("pay", 0, 0),
        ("pay", 2, 0),  # 400 left, o-2 costs 301: paid
        ("cancel", 0, 0),  # refund o-0
        ("ship", 2, 0),
        ("cancel", 2, 0),  # refused: shipped
        ("deposit", 0, 1),
    ],
    (None, None),
)
def test_money_is_conserved_whatever_happens(
    history: list[tuple[str, int, int]], opened: tuple[int | None, ...]
) -> None:
    world = World()
    for customer, deposit in zip(CUSTOMERS, opened, strict=True):
        if deposit is not None:
            world.accounts[customer] = acc.decide(None, acc.OpenAccount(customer, deposit))
    for kind, n, cents in history:
        # A refused command changes nothing, which the checks below confirm.
        with contextlib.suppress(DomainError):
            world.apply(kind, n, cents)
        check_invariants(world)


def check_invariants(world: World) -> None:
    deposited = held_for_orders = balances = 0
    for customer, events in world.accounts.items():
        state = world.account(customer)
        assert state is not None
        assert state.balance_cents >= 0
        assert state.balance_cents == (
            state.deposited_cents - state.debited_cents + state.credited_cents
        )
        debits = [e.order_id for e in events if isinstance(e, acc.AccountDebited)]
        credits = [e.order_id for e in events if isinstance(e, acc.AccountCredited)]
        assert len(debits) == len(set(debits)), "an order debited twice"
        assert len(credits) == len(set(credits)), "an order refunded twice"
        assert set(credits) <= set(debits), "a refund without a debit"
        # Each movement states the balance after it: replaying them must agree.
        running = 0
        for event in events:
            if isinstance(event, acc.FundsDeposited | acc.AccountCredited):
                running += event.amount_cents
            elif isinstance(event, acc.AccountDebited):
                running -= event.amount_cents
            else:
                continue
            assert event.balance_cents == running
        deposited += state.deposited_cents
        balances += state.balance_cents
        for order_id in set(debits) - set(credits):
            order = world.order(order_id)
            assert order is not None
            assert order.status in PAID_STATUSES
            assert state.debits[order_id] == order.total_cents
            held_for_orders += order.total_cents
        for order_id in credits:
            order = world.order(order_id)
            assert order is not None and order.status is ord_.OrderStatus.CANCELLED
    # Money only enters by deposit; it is either on an account or paid for a live order.
    assert deposited == balances + held_for_orders
    for order_id in world.orders:
        order = world.order(order_id)
        assert order is not None
        paid = order.status in PAID_STATUSES
        account = world.account(order.customer_id)
        debited = account is not None and order_id in account.debits
        refunded = account is not None and order_id in account.credited_orders
        assert paid == (debited and not refunded), f"{order_id} {order.status}"
