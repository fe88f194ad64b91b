"""Property: random deposits, placements, payments and cancellations through the real services
on a real SQLite event log, projected into a real read model: money is conserved in both, and
the read model's balances and statements are exactly the log's.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from command_service.adapters.event_store import EventStore
from command_service.application.accounts import AccountService
from command_service.application.commands import CommandContext
from command_service.application.orders import OrderService
from command_service.domain import account as acc
from command_service.domain import order as ord_
from command_service.domain.errors import DomainError
from query_service.read_model.tables import account_statement, accounts
from shared.contract.principal import (
    ACCOUNTS_DEPOSIT,
    ADMIN,
    ORDERS_FULFIL,
    ORDERS_WRITE,
    Principal,
)
from shared.infra.db import create_database_engine
from shared.infra.dev_keys import DEV_ISSUER
from tests.integration.query_support import new_read_model, project_directly
from tests.support.reference_model import ExpectedViews

CUSTOMERS = ("c-0", "c-1")
KINDS = ("deposit", "place", "place", "pay", "pay", "pay", "ship", "cancel", "cancel", "open")

steps = st.lists(
    st.tuples(st.sampled_from(KINDS), st.integers(0, 3), st.sampled_from([1, 300, 301, 600])),
    min_size=1,
    max_size=30,
)
openings = st.tuples(*(st.sampled_from([None, 0, 300, 600]) for _ in CUSTOMERS))

# Who does what, as in production: each customer its own orders, the payment gateway the
# deposits, the warehouse the shipping, staff (admin) opening accounts with a first deposit.
GATEWAY = CommandContext(principal=Principal("gateway", DEV_ISSUER, frozenset({ACCOUNTS_DEPOSIT})))
WAREHOUSE = CommandContext(principal=Principal("warehouse", DEV_ISSUER, frozenset({ORDERS_FULFIL})))
STAFF = CommandContext(principal=Principal("staff", DEV_ISSUER, frozenset({ADMIN})))


def as_customer(customer_id: str) -> CommandContext:
    scopes = frozenset({ORDERS_WRITE})
    return CommandContext(
        principal=Principal(f"user-{customer_id}", DEV_ISSUER, scopes, customer_id)
    )


def run(history: list[tuple[str, int, int]], opened: tuple[int | None, ...], folder: Path) -> None:
    store = EventStore(create_database_engine(f"sqlite:///{folder / 'events.db'}"))
    store.create_schema()
    orders, accounts_service = OrderService(store), AccountService(store)
    for customer, deposit in zip(CUSTOMERS, opened, strict=True):
        if deposit is not None:
            accounts_service.open_account(acc.OpenAccount(customer, deposit), STAFF)
    for kind, n, cents in history:
        customer, order_id = CUSTOMERS[n % len(CUSTOMERS)], f"o-{n}"
        own = as_customer(customer)
        # A refused command writes nothing; the fold below would notice if it had.
        with contextlib.suppress(DomainError):
            if kind == "open":
                accounts_service.open_account(acc.OpenAccount(customer, cents), STAFF)
            elif kind == "deposit":
                accounts_service.deposit(acc.DepositFunds(customer, cents), GATEWAY)
            elif kind == "place":
                line = ord_.OrderLine("p-1", 1, cents)
                orders.place_order(ord_.PlaceOrder(order_id, customer, (line,)), own)
            elif kind == "cancel":
                orders.cancel_order(ord_.CancelOrder(order_id), None, own)
            else:
                target = {"pay": "PAID", "ship": "SHIPPED"}[kind]
                command = ord_.ChangeOrderStatus(order_id, ord_.OrderStatus(target))
                orders.change_status(command, None, own if kind == "pay" else WAREHOUSE)

    log = store.read_all(0, 10_000)
    store.engine.dispose()
    # The log: versions gapless, balances never negative, each movement states its balance,
    # each debit pays a live order and each refund a cancelled one (checked by the fold).
    expected = ExpectedViews.fold(log)
    deposited = sum(a.deposited_cents for a in expected.accounts.values())
    on_accounts = sum(a.balance_cents for a in expected.accounts.values())
    paid = {"PAID", "SHIPPED", "DELIVERED"}
    held = sum(o.total_cents for o in expected.orders.values() if o.status in paid)
    assert deposited == on_accounts + held

    # The read model, projected by the projection code the projector runs.
    engine = new_read_model(f"sqlite:///{folder / 'read.db'}")
    project_directly(engine, log)
    project_directly(engine, log)  # a full redelivery changes nothing
    with engine.connect() as conn:
        balances = {r.customer_id: r.balance_cents for r in conn.execute(select(accounts))}
        lines = conn.execute(
            select(account_statement).order_by(
                account_statement.c.customer_id, account_statement.c.version
            )
        ).all()
    engine.dispose()
    assert balances == {c: a.balance_cents for c, a in expected.accounts.items()}
    assert [(r.customer_id, r.version, r.amount_cents, r.balance_cents) for r in lines] == [
        (c, line[0], line[2], line[3])
        for c, a in sorted(expected.accounts.items())
        for line in a.statement
    ]


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(steps, openings)
def test_money_is_conserved_in_the_log_and_the_read_model(
    history: list[tuple[str, int, int]], opened: tuple[int | None, ...]
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(history, opened, Path(folder))
