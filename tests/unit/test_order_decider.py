"""Order rules as given events / when command / then events or error. No I/O."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from command_service.domain.errors import (
    InvalidCommand,
    InvalidTransition,
    OrderAlreadyExists,
    OrderNotFound,
)
from command_service.domain.order import (
    CancelOrder,
    ChangeOrderStatus,
    Command,
    Event,
    OrderCancelled,
    OrderLine,
    OrderPlaced,
    OrderStatus,
    OrderStatusChanged,
    PlaceOrder,
    decide,
    load,
    price_to_cents,
)

S = OrderStatus
LINES = (OrderLine("p-1", 2, 1250), OrderLine("p-2", 1, 99))
PLACED = OrderPlaced("o-1", "c-1", LINES, 2599)


def then(given: list[Event], when: Command) -> list[Event]:
    return decide(load(given), when)


def moved(src: OrderStatus, dst: OrderStatus) -> OrderStatusChanged:
    return OrderStatusChanged("o-1", "c-1", src, dst, 2599)


def history_to(status: OrderStatus) -> list[Event]:
    path = [S.PLACED, S.PAID, S.SHIPPED, S.DELIVERED]
    if status is S.CANCELLED:
        return [PLACED, OrderCancelled("o-1", "c-1", S.PLACED, LINES, 2599)]
    events: list[Event] = [PLACED]
    for src, dst in itertools.pairwise(path[: path.index(status) + 1]):
        events.append(moved(src, dst))
    return events


def test_place_order_computes_total_in_cents() -> None:
    assert then([], PlaceOrder("o-1", "c-1", LINES)) == [PLACED]


def test_placed_order_state() -> None:
    state = load([PLACED])
    assert state is not None
    assert (state.status, state.version, state.total_cents) == (S.PLACED, 1, 2599)


def test_place_twice_is_rejected() -> None:
    with pytest.raises(OrderAlreadyExists):
        then([PLACED], PlaceOrder("o-1", "c-1", LINES))


@pytest.mark.parametrize("count", [1, 100])
def test_line_count_bounds_accepted(count: int) -> None:
    lines = tuple(OrderLine(f"p-{i}", 1, 100) for i in range(count))
    [event] = then([], PlaceOrder("o-1", "c-1", lines))
    assert isinstance(event, OrderPlaced)
    assert event.total_cents == 100 * count


@pytest.mark.parametrize("count", [0, 101])
def test_line_count_bounds_rejected(count: int) -> None:
    lines = tuple(OrderLine(f"p-{i}", 1, 100) for i in range(count))
    with pytest.raises(InvalidCommand) as err:
        then([], PlaceOrder("o-1", "c-1", lines))
    assert err.value.field == "lines"


@pytest.mark.parametrize("quantity", [1, 10_000])
def test_quantity_bounds_accepted(quantity: int) -> None:
    [event] = then([], PlaceOrder("o-1", "c-1", (OrderLine("p", quantity, 3),)))
    assert isinstance(event, OrderPlaced)
    assert event.total_cents == 3 * quantity


@pytest.mark.parametrize("quantity", [0, -1, 10_001, True])
def test_quantity_bounds_rejected(quantity: int) -> None:
    with pytest.raises(InvalidCommand) as err:
        then([], PlaceOrder("o-1", "c-1", (OrderLine("p", quantity, 3),)))
    assert err.value.field == "lines.0.quantity"


def test_negative_price_rejected() -> None:
    with pytest.raises(InvalidCommand) as err:
        then([], PlaceOrder("o-1", "c-1", (OrderLine("ok", 1, 1), OrderLine("p", 1, -1))))
    assert err.value.field == "lines.1.unit_price"


def test_free_line_accepted() -> None:
    [event] = then([], PlaceOrder("o-1", "c-1", (OrderLine("gift", 1, 0),)))
    assert isinstance(event, OrderPlaced)
    assert event.total_cents == 0


@pytest.mark.parametrize(
    ("field", "command"),
    [
        ("order_id", PlaceOrder("", "c-1", LINES)),
        ("order_id", PlaceOrder("x" * 65, "c-1", LINES)),
        ("order_id", PlaceOrder("has space", "c-1", LINES)),
        ("customer_id", PlaceOrder("o-1", "c/1", LINES)),
        ("lines.0.product_id", PlaceOrder("o-1", "c-1", (OrderLine("ü", 1, 1),))),
    ],
)
def test_identifiers_rejected(field: str, command: PlaceOrder) -> None:
    with pytest.raises(InvalidCommand) as err:
        then([], command)
    assert err.value.field == field


def test_identifier_of_64_allowed_characters_accepted() -> None:
    ident = ("Az09._-" * 10)[:64]
    [event] = then([], PlaceOrder(ident, ident, (OrderLine(ident, 1, 1),)))
    assert isinstance(event, OrderPlaced)


@pytest.mark.parametrize(
    ("price", "cents"), [("0", 0), ("12.5", 1250), ("12.50", 1250), ("0.01", 1), ("7", 700)]
)
def test_price_to_cents(price: str, cents: int) -> None:
    assert price_to_cents("p", Decimal(price)) == cents


@pytest.mark.parametrize("price", ["12.345", "-0.01", "NaN", "Infinity"])
def test_price_to_cents_rejects(price: str) -> None:
    with pytest.raises(InvalidCommand):
        price_to_cents("p", Decimal(price))


ALLOWED = [
    (S.PLACED, S.PAID),
    (S.PAID, S.SHIPPED),
    (S.SHIPPED, S.DELIVERED),
]


@pytest.mark.parametrize(("src", "dst"), ALLOWED)
def test_allowed_transitions(src: OrderStatus, dst: OrderStatus) -> None:
    assert then(history_to(src), ChangeOrderStatus("o-1", dst)) == [moved(src, dst)]


@pytest.mark.parametrize("src", [S.PLACED, S.PAID])
def test_cancel_from_placed_or_paid(src: OrderStatus) -> None:
    events = then(history_to(src), CancelOrder("o-1", "changed my mind"))
    assert events == [OrderCancelled("o-1", "c-1", src, LINES, 2599, "changed my mind")]


def test_status_change_to_cancelled_is_a_cancellation() -> None:
    events = then(history_to(S.PAID), ChangeOrderStatus("o-1", S.CANCELLED))
    assert events == [OrderCancelled("o-1", "c-1", S.PAID, LINES, 2599, None)]


REJECTED = [
    (src, dst)
    for src in S
    for dst in S
    if dst is not S.PLACED
    and (src, dst) not in ALLOWED
    and not (src in (S.PLACED, S.PAID) and dst is S.CANCELLED)
]


@pytest.mark.parametrize(("src", "dst"), REJECTED)
def test_rejected_transitions(src: OrderStatus, dst: OrderStatus) -> None:
    given = history_to(src)
    with pytest.raises(InvalidTransition) as err:
        then(given, ChangeOrderStatus("o-1", dst))
    assert (err.value.current, err.value.target, err.value.version) == (src, dst, len(given))


@pytest.mark.parametrize("src", [S.SHIPPED, S.DELIVERED, S.CANCELLED])
def test_cancel_rejected_after_shipping_or_when_final(src: OrderStatus) -> None:
    with pytest.raises(InvalidTransition):
        then(history_to(src), CancelOrder("o-1"))


def test_commands_on_missing_order() -> None:
    with pytest.raises(OrderNotFound):
        then([], ChangeOrderStatus("o-1", S.PAID))
    with pytest.raises(OrderNotFound):
        then([], CancelOrder("o-1"))


def test_versions_count_events() -> None:
    state = load(history_to(S.DELIVERED))
    assert state is not None
    assert (state.status, state.version) == (S.DELIVERED, 4)


def test_rejected_transition_list_is_complete() -> None:
    # 5 sources x 4 targets (PLACED is never a target) minus 3 forward moves and 2 cancels.
    assert len(REJECTED) == 5 * 4 - 3 - 2
