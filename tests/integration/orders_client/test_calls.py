"""Every method of orders_client against the running services: what each returns, typed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from orders_client import Client, LineItem
from tests.integration.orders_client.conftest import customer_client, read_your_write
from tests.support.order_system import OrderSystem

pytestmark = pytest.mark.kafka


def test_an_order_from_account_to_delivery(
    system: OrderSystem, admin: Client, make_client: Callable[..., Client]
) -> None:
    alice = customer_client(make_client, "c-calls")
    opened = alice.open_account("c-calls")
    assert (opened.customer_id, opened.version, opened.balance_cents) == ("c-calls", 1, 0)
    assert opened.position >= 1 and not opened.replayed
    deposited = admin.deposit("c-calls", 10_000, deposit_id="dep-calls-1")
    assert (deposited.version, deposited.balance_cents) == (2, 10_000)

    lines = [LineItem("p-calls", 2, 1250), LineItem("p-other", 1, 500)]
    placed = alice.place_order("c-calls", lines, order_id="o-calls-1")
    assert (placed.order_id, placed.version, placed.status, placed.account) == (
        "o-calls-1",
        1,
        "PLACED",
        None,
    )
    paid = alice.change_status("o-calls-1", "PAID", expected_version=1)
    assert (paid.version, paid.status) == (2, "PAID")
    assert paid.position > placed.position
    assert paid.account is not None
    assert (paid.account.movement, paid.account.amount_cents) == ("debit", 3000)
    assert (paid.account.version, paid.account.balance_cents) == (3, 7000)
    shipped = admin.change_status("o-calls-1", "SHIPPED")
    delivered = admin.change_status("o-calls-1", "DELIVERED", expected_version=shipped.version)
    assert (delivered.version, delivered.status) == (4, "DELIVERED")

    # The command side folds the log: strongly consistent, now or as of a version or time.
    state = alice.order_state("o-calls-1")
    assert (state.status, state.version, state.total_cents, state.currency) == (
        "DELIVERED",
        4,
        3000,
        "EUR",
    )
    assert [(line.product_id, line.unit_price_cents) for line in state.lines] == [
        ("p-calls", 1250),
        ("p-other", 500),
    ]
    assert alice.order_state("o-calls-1", as_of_version=2).status == "PAID"
    assert alice.order_state("o-calls-1", as_of=datetime.now(UTC)).version == 4
    account_state = alice.account_state("c-calls")
    assert (account_state.balance_cents, account_state.debited_cents) == (7000, 3000)
    assert alice.account_state("c-calls", as_of_version=1).balance_cents == 0

    # The read side, reading our own writes.
    order = read_your_write(lambda: alice.order("o-calls-1", min_version=delivered.version))
    assert (order.status, order.version, order.total_cents, order.line_count) == (
        "DELIVERED",
        4,
        3000,
        2,
    )
    assert [(line.line_no, line.amount_cents) for line in order.lines] == [(1, 2500), (2, 500)]
    assert order.created_at.tzinfo is not None
    account = read_your_write(lambda: alice.account("c-calls", min_version=3))
    assert (account.balance_cents, account.deposited_cents, account.debited_cents) == (
        7000,
        10_000,
        3000,
    )
    assert alice.order("o-calls-1").version == 4
    assert alice.account("c-calls").version == 3

    history = alice.order_history("o-calls-1")
    assert [entry.type for entry in history.entries][:2] == ["OrderPlaced", "OrderStatusChanged"]
    assert history.version == 4
    by = history.entries[0].by
    assert by is not None and (by.sub, by.customer_id) == ("sub-c-calls", "c-calls")
    statement = alice.statement("c-calls")
    assert [(line.kind, line.amount_cents, line.balance_cents) for line in statement.lines] == [
        ("DEPOSIT", 10_000, 10_000),
        ("DEBIT", -3000, 7000),
    ]
    assert statement.lines[0].deposit_id == "dep-calls-1"
    assert statement.next_cursor is None
    customer = alice.customer("c-calls")
    assert (customer.order_count, customer.total_cents, customer.balance_cents) == (1, 3000, 7000)
    assert customer.orders_by_status["DELIVERED"] == 1
    mine = alice.orders()
    assert [o.order_id for o in mine.orders] == ["o-calls-1"]
    assert [o.order_id for o in alice.customer_orders("c-calls", status="DELIVERED").orders] == [
        "o-calls-1"
    ]
    assert admin.customer_orders("c-calls", status="PAID").orders == ()
    sales = admin.product_sales("p-calls")
    assert (sales.units_sold, sales.amount_cents, sales.order_count) == (2, 2500, 1)
    assert "p-calls" in [p.product_id for p in admin.top_products(by="amount", limit=100)]


def test_cancelling_a_paid_order_refunds_it(
    admin: Client, make_client: Callable[..., Client]
) -> None:
    bob = customer_client(make_client, "c-refund")
    bob.open_account("c-refund")
    admin.deposit("c-refund", 5000)
    placed = bob.place_order("c-refund", [LineItem("p-refund", 1, 4000)])
    assert placed.order_id  # chosen by the service
    bob.change_status(placed.order_id, "PAID")

    cancelled = bob.cancel_order(placed.order_id, expected_version=2, reason="changed my mind")

    assert (cancelled.status, cancelled.version) == ("CANCELLED", 3)
    assert cancelled.account is not None
    assert (cancelled.account.movement, cancelled.account.balance_cents) == ("credit", 5000)
    account = read_your_write(lambda: bob.account("c-refund", min_version=4))
    assert account.credited_cents == 4000


def test_the_event_log_as_stored(admin: Client, make_client: Callable[..., Client]) -> None:
    carol = customer_client(make_client, "c-log")
    carol.open_account("c-log")
    placed = carol.place_order("c-log", [LineItem("p-log", 3, 100)], order_id="o-log-1")
    carol.cancel_order("o-log-1")

    events = admin.order_events("o-log-1")
    assert [(e.type, e.version, e.stream_id) for e in events] == [
        ("OrderPlaced", 1, "o-log-1"),
        ("OrderCancelled", 2, "o-log-1"),
    ]
    assert events[0].position == placed.position
    assert events[0].data["customer_id"] == "c-log"
    assert [e.type for e in admin.account_events("c-log")] == ["AccountOpened"]
    head = admin.head_position()
    assert head >= events[1].position
    page = admin.events(after=placed.position - 1, limit=1)
    assert [e.event_id for e in page.events] == [events[0].event_id]
    assert page.has_more and page.next_after == placed.position


def test_a_resent_command_with_its_key_is_answered_with_the_first_result(
    admin: Client, make_client: Callable[..., Client]
) -> None:
    dave = customer_client(make_client, "c-replay")
    lines = [LineItem("p-replay", 1, 100)]
    first = dave.place_order("c-replay", lines, idempotency_key="key-replay-1")

    again = dave.place_order("c-replay", lines, idempotency_key="key-replay-1")

    assert again.replayed and not first.replayed
    assert (again.order_id, again.version, again.position) == (
        first.order_id,
        first.version,
        first.position,
    )
    assert len(admin.order_events(first.order_id)) == 1
    # Without the key, the same request is a second order: the key is what makes it one.
    other = dave.place_order("c-replay", lines)
    assert other.order_id != first.order_id
