"""The pure projection: given the current order row and an event, then these row changes."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from query_service.projection.events import (
    Actor,
    Line,
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
    OrderStatusChanged,
    UnprojectableEvent,
)
from query_service.projection.orders import (
    CustomerDelta,
    HistoryRow,
    LineRow,
    OrderRow,
    ProductDelta,
    Step,
    format_cents,
    next_step,
    project,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LINES = (Line("apple", 3, 250), Line("pear", 1, 1000), Line("apple", 2, 250))


def placed(order_id: str = "o-1", customer_id: str = "c-1", lines: tuple[Line, ...] = LINES):
    total = sum(line.amount_cents for line in lines)
    return OrderPlaced(f"e-{order_id}-1", order_id, customer_id, 1, 1, T0, lines, total)


def changed(order: OrderRow, to_status: str, minutes: int = 1) -> OrderStatusChanged:
    return OrderStatusChanged(
        f"e-{order.order_id}-{order.version + 1}",
        order.order_id,
        order.customer_id,
        order.version + 1,
        10 + order.version,
        T0 + timedelta(minutes=minutes),
        order.status,
        to_status,
        order.total_cents,
    )


def cancelled(order: OrderRow, lines: tuple[Line, ...] = LINES) -> OrderCancelled:
    return OrderCancelled(
        f"e-{order.order_id}-{order.version + 1}",
        order.order_id,
        order.customer_id,
        order.version + 1,
        10 + order.version,
        T0 + timedelta(minutes=5),
        order.status,
        lines,
        order.total_cents,
        "changed my mind",
    )


@dataclass
class Model:
    """An in-memory read model that adds deltas the way the SQL writer does."""

    orders: dict[str, OrderRow] = field(default_factory=dict)
    customers: dict[str, Counter[str]] = field(default_factory=dict)
    products: dict[str, Counter[str]] = field(default_factory=dict)
    history: list[HistoryRow] = field(default_factory=list)

    def apply(self, event: OrderEvent) -> Step:
        current = self.orders.get(event.order_id)
        step = next_step(current.version if current else 0, event.version)
        if step is not Step.APPLY:
            return step
        changes = project(current, event)
        self.orders[event.order_id] = changes.order
        self.history.append(changes.history)
        customer = self.customers.setdefault(changes.customer.customer_id, Counter())
        customer.update({"orders": changes.customer.orders, "total": changes.customer.total_cents})
        customer.update(changes.customer.by_status)
        for product in changes.products:
            sales = self.products.setdefault(product.product_id, Counter())
            sales.update(
                {"units": product.units, "amount": product.amount_cents, "orders": product.orders}
            )
        return step


def test_order_placed_inserts_the_order_lines_history_and_adds_to_totals() -> None:
    changes = project(None, placed())

    assert changes.is_new_order
    assert changes.order == OrderRow("o-1", "c-1", "PLACED", 3, 6, 2250, T0, T0, 1)
    assert changes.lines == (
        LineRow("o-1", 1, "apple", 3, 250, 750),
        LineRow("o-1", 2, "pear", 1, 1000, 1000),
        LineRow("o-1", 3, "apple", 2, 250, 500),
    )
    assert changes.history == HistoryRow(
        "o-1", 1, "e-o-1-1", "OrderPlaced", T0, 1,
        "Placed by c-1: 3 line(s), 6 item(s), total 22.50",
    )  # fmt: skip
    assert changes.customer == CustomerDelta("c-1", 1, 2250, {"PLACED": 1})
    # Two lines of one product count as one order of that product.
    assert changes.products == (
        ProductDelta("apple", 5, 1250, 1),
        ProductDelta("pear", 1, 1000, 1),
    )


def test_status_change_moves_the_order_and_its_customer_count() -> None:
    order = project(None, placed()).order
    event = changed(order, "PAID")

    changes = project(order, event)

    assert not changes.is_new_order
    assert changes.order.status == "PAID"
    assert changes.order.version == 2
    assert changes.order.updated_at == event.occurred_at
    assert changes.order.created_at == T0
    assert changes.lines == ()
    assert changes.history.summary == "PLACED -> PAID"
    assert changes.history.event_type == "OrderStatusChanged"
    assert changes.customer == CustomerDelta("c-1", 0, 0, {"PLACED": -1, "PAID": 1})
    assert changes.products == ()


def test_cancellation_reverses_product_sales_and_the_customer_total() -> None:
    order = project(None, placed()).order
    paid = project(order, changed(order, "PAID")).order

    changes = project(paid, cancelled(paid))

    assert changes.order.status == "CANCELLED"
    assert changes.order.total_cents == 2250  # the order keeps its amount; totals drop it
    assert changes.customer == CustomerDelta("c-1", 0, -2250, {"PAID": -1, "CANCELLED": 1})
    assert changes.products == (
        ProductDelta("apple", -5, -1250, -1),
        ProductDelta("pear", -1, -1000, -1),
    )
    assert changes.history.summary == "Cancelled (was PAID): changed my mind"


def test_a_cancelled_order_leaves_no_sales_and_only_its_count() -> None:
    model = Model()
    model.apply(placed("o-1"))
    model.apply(placed("o-2", lines=(Line("apple", 1, 250),)))
    model.apply(cancelled(model.orders["o-1"]))

    assert model.products["apple"] == Counter(units=1, amount=250, orders=1)
    assert model.products["pear"] == Counter(units=0, amount=0, orders=0)
    customer = model.customers["c-1"]
    assert customer["orders"] == 2
    assert customer["total"] == 250
    assert (customer["PLACED"], customer["CANCELLED"]) == (1, 1)


def test_status_counts_follow_each_order_through_its_lifecycle() -> None:
    model = Model()
    for n in range(1, 5):
        model.apply(placed(f"o-{n}"))
    for target in ("PAID", "SHIPPED", "DELIVERED"):
        model.apply(changed(model.orders["o-1"], target))
    model.apply(changed(model.orders["o-2"], "PAID"))
    model.apply(cancelled(model.orders["o-3"]))

    counts = {s: model.customers["c-1"][s] for s in ("PLACED", "PAID", "SHIPPED", "DELIVERED")}
    assert counts == {"PLACED": 1, "PAID": 1, "SHIPPED": 0, "DELIVERED": 1}
    assert model.customers["c-1"]["CANCELLED"] == 1
    assert model.customers["c-1"]["orders"] == 4
    assert model.customers["c-1"]["total"] == 3 * 2250


def test_duplicates_are_recognised_by_version_and_change_nothing() -> None:
    model = Model()
    first = placed()
    model.apply(first)
    second = changed(model.orders["o-1"], "PAID")
    model.apply(second)
    snapshot = (dict(model.orders), {k: Counter(v) for k, v in model.customers.items()})

    assert model.apply(first) is Step.DUPLICATE
    assert model.apply(second) is Step.DUPLICATE

    assert (dict(model.orders), model.customers) == snapshot
    assert len(model.history) == 2


@pytest.mark.parametrize(
    ("applied", "incoming", "step"),
    [(0, 1, Step.APPLY), (3, 4, Step.APPLY), (3, 3, Step.DUPLICATE), (3, 1, Step.DUPLICATE),
     (0, 2, Step.GAP), (3, 7, Step.GAP)],
)  # fmt: skip
def test_next_step_by_version(applied: int, incoming: int, step: Step) -> None:
    assert next_step(applied, incoming) is step


def test_project_refuses_an_event_that_is_not_the_next_version() -> None:
    order = project(None, placed()).order
    with pytest.raises(ValueError, match="needs version 2"):
        project(order, placed())


def test_events_inconsistent_with_the_order_are_unprojectable() -> None:
    order = project(None, placed()).order
    wrong_from = OrderStatusChanged("e", "o-1", "c-1", 2, 2, T0, "PAID", "SHIPPED", 2250)
    other_customer = OrderStatusChanged("e", "o-1", "c-9", 2, 2, T0, "PLACED", "PAID", 2250)
    short_lines = cancelled(order, lines=(Line("apple", 1, 250),))
    cancelled_order = project(order, cancelled(order)).order

    for event, message in [
        (wrong_from, "from_status is PAID"),
        (other_customer, "customer"),
        (short_lines, "do not add up"),
    ]:
        with pytest.raises(UnprojectableEvent, match=message):
            project(order, event)
    with pytest.raises(UnprojectableEvent, match="cancelled"):
        project(cancelled_order, changed(cancelled_order, "PAID"))


def test_format_cents() -> None:
    assert [format_cents(c) for c in (0, 5, 99, 100, 2250, 123456789)] == [
        "0.00", "0.05", "0.99", "1.00", "22.50", "1234567.89",
    ]  # fmt: skip


def test_each_history_row_names_who_caused_its_event() -> None:
    customer = Actor("user-7", "https://idp.example", "c-1", "web-shop")
    staff = Actor("support-3", "https://idp.example", None, "console")
    first = replace(placed(), by=customer)
    order = project(None, first).order
    paid = replace(changed(order, "PAID"), by=staff)
    paid_order = project(order, paid).order
    cancel = cancelled(paid_order)  # no principal: stored before they were recorded

    rows = [
        project(None, first).history,
        project(order, paid).history,
        project(paid_order, cancel).history,
    ]

    assert [row[7:] for row in rows] == [
        ("user-7", "https://idp.example", "c-1", "web-shop"),
        ("support-3", "https://idp.example", None, "console"),
        (None, None, None, None),
    ]
    assert rows[0] == HistoryRow(
        "o-1", 1, "e-o-1-1", "OrderPlaced", T0, 1,
        "Placed by c-1: 3 line(s), 6 item(s), total 22.50",
        "user-7", "https://idp.example", "c-1", "web-shop",
    )  # fmt: skip
    # Who acted changes no figure: the order rows are those of an anonymous history.
    assert project(None, first).order == project(None, placed()).order
