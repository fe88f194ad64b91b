"""Every problem the services answer the client's calls with, raised as its own exception
type carrying the problem's members; a refused command records nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from orders_client import (
    AccountAlreadyExists,
    AccountNotFound,
    AccountRequired,
    Client,
    Conflict,
    CustomerNotFound,
    IdempotencyKeyReused,
    InsufficientFunds,
    InsufficientScope,
    InvalidHeader,
    InvalidQueryParameter,
    InvalidToken,
    InvalidTransition,
    LineItem,
    NotAtThatPoint,
    NotFound,
    OrderAlreadyExists,
    OrderIdTaken,
    OrderNotFound,
    PaymentRuleViolated,
    ProblemError,
    ProductNotFound,
    ProjectionBehind,
    TooManyWaiters,
    Unauthorized,
    ValidationFailed,
    VersionConflict,
)
from tests.integration.orders_client.conftest import customer_client
from tests.support.order_system import OrderSystem

pytestmark = pytest.mark.kafka

LINES = [LineItem("p-err", 1, 2500)]


def test_not_found_on_both_services(admin: Client) -> None:
    with pytest.raises(OrderNotFound) as on_command_side:
        admin.order_state("o-missing")
    assert on_command_side.value.order_id == "o-missing"
    assert on_command_side.value.status == 404
    assert on_command_side.value.type == "urn:event-sourced-orders:problem:order-not-found"
    with pytest.raises(OrderNotFound):
        admin.order("o-missing")
    with pytest.raises(OrderNotFound):
        admin.change_status("o-missing", "PAID")
    with pytest.raises(AccountNotFound) as account:
        admin.account_state("nobody")
    assert account.value.customer_id == "nobody"
    with pytest.raises(AccountNotFound):
        admin.account("nobody")
    with pytest.raises(AccountNotFound):
        admin.deposit("nobody", 100)
    with pytest.raises(CustomerNotFound):
        admin.customer("nobody")
    with pytest.raises(ProductNotFound):
        admin.product_sales("p-never-sold")
    assert issubclass(CustomerNotFound, NotFound) and issubclass(NotFound, ProblemError)


def test_state_before_the_stream_began_is_not_at_that_point(
    make_client: Callable[..., Client],
) -> None:
    erin = customer_client(make_client, "c-asof")
    erin.place_order("c-asof", LINES, order_id="o-asof")

    with pytest.raises(NotAtThatPoint) as error:
        erin.order_state("o-asof", as_of=datetime(2000, 1, 1, tzinfo=UTC))

    assert error.value.slug == "order-not-found-at-that-point"
    assert error.value.current_version == 1


def test_conflicts_name_the_current_state(
    admin: Client, make_client: Callable[..., Client]
) -> None:
    frank = customer_client(make_client, "c-conflict")
    placed = frank.place_order("c-conflict", LINES, order_id="o-conflict")

    with pytest.raises(VersionConflict) as stale:
        frank.cancel_order("o-conflict", expected_version=5)
    assert (stale.value.expected_version, stale.value.current_version) == (5, 1)
    assert stale.value.current_status == "PLACED"
    with pytest.raises(InvalidTransition) as transition:
        admin.change_status("o-conflict", "DELIVERED")
    assert transition.value.requested_status == "DELIVERED"
    with pytest.raises(OrderAlreadyExists) as exists:
        frank.place_order("c-conflict", [LineItem("p-err", 2, 2500)], order_id="o-conflict")
    assert exists.value.current_version == 1
    # Another customer reusing the id learns nothing about the order.
    grace = customer_client(make_client, "c-conflict-2")
    with pytest.raises(OrderIdTaken):
        grace.place_order("c-conflict-2", LINES, order_id="o-conflict")
    assert isinstance(exists.value, Conflict) and exists.value.status == 409
    assert [e.version for e in admin.order_events(placed.order_id)] == [1]


def test_money_refusals(admin: Client, make_client: Callable[..., Client]) -> None:
    henry = customer_client(make_client, "c-money")
    henry.place_order("c-money", LINES, order_id="o-money")
    with pytest.raises(AccountRequired):
        henry.change_status("o-money", "PAID")

    henry.open_account("c-money")
    admin.deposit("c-money", 1000, deposit_id="dep-money")
    with pytest.raises(InsufficientFunds) as short:
        henry.change_status("o-money", "PAID")
    assert (short.value.balance_cents, short.value.required_cents) == (1000, 2500)
    with pytest.raises(PaymentRuleViolated) as reused:
        admin.deposit("c-money", 999, deposit_id="dep-money")
    assert reused.value.field == "deposit_id"
    with pytest.raises(AccountAlreadyExists):
        admin.open_account("c-money", initial_deposit_cents=5)
    assert henry.account_state("c-money").version == 2  # nothing recorded by any refusal
    assert henry.order_state("o-money").status == "PLACED"


def test_invalid_requests_name_the_field(admin: Client) -> None:
    with pytest.raises(ValidationFailed) as invalid:
        admin.place_order("c-invalid", [LineItem("p-err", 0, 100)])
    assert "lines.0.quantity" in invalid.value.errors
    with pytest.raises(InvalidQueryParameter) as bad_query:
        admin.orders(cursor="not-a-cursor")
    assert "cursor" in bad_query.value.errors
    with pytest.raises(InvalidHeader) as bad_key:
        admin.place_order("c-invalid", LINES, idempotency_key="has spaces")
    assert "Idempotency-Key" in bad_key.value.errors


def test_a_key_reused_for_another_request(admin: Client) -> None:
    admin.place_order("c-key", LINES, idempotency_key="key-reused")

    with pytest.raises(IdempotencyKeyReused) as reused:
        admin.place_order("c-key", [LineItem("p-err", 3, 2500)], idempotency_key="key-reused")

    assert reused.value.status == 409
    assert "Idempotency-Key" in reused.value.errors


def test_tokens_and_scopes(system: OrderSystem, make_client: Callable[..., Client]) -> None:
    with pytest.raises(Unauthorized) as missing:
        make_client(token="").order_state("o-any")
    assert "Bearer" in missing.value.headers["WWW-Authenticate"]
    with pytest.raises(InvalidToken):
        make_client(token="not.a.jwt").order("o-any")
    reader = make_client("reader", ("read:own",), "c-reader")
    with pytest.raises(InsufficientScope) as scope:
        reader.place_order("c-reader", LINES)
    assert "orders:write" in scope.value.required_scopes
    with pytest.raises(InsufficientScope):
        reader.product_sales("p-err")


def test_a_min_version_the_projection_never_reaches(make_client: Callable[..., Client]) -> None:
    ivy = customer_client(make_client, "c-behind")
    placed = ivy.place_order("c-behind", LINES)

    with pytest.raises(ProjectionBehind) as behind:
        ivy.order(placed.order_id, min_version=99)  # waits READ_YOUR_WRITES_MAX_WAIT_MS

    assert behind.value.min_version == 99
    assert behind.value.seen_version in (None, 1)  # None: not projected at all yet


def test_too_many_waiting_reads(system: OrderSystem, make_client: Callable[..., Client]) -> None:
    # A query API that lets one min_version wait in at a time, each waiting up to 5 s: one
    # worker, as the limit is per process (two workers would let one reader into each).
    narrow = system.runner.start_http(
        "query-api-narrow",
        "query-api",
        "query_service.server",
        "QUERY_API_HOST",
        "QUERY_API_PORT",
        **system.query_env(),
        QUERY_API_WORKERS="1",
        READ_YOUR_WRITES_MAX_WAITERS="1",
        READ_YOUR_WRITES_MAX_WAIT_MS="5000",
    )
    jack = customer_client(make_client, "c-waiters")
    placed = jack.place_order("c-waiters", LINES)
    outcomes: list[type[Exception]] = []
    start = threading.Barrier(2)

    def wait_for_version_99() -> None:
        client = customer_client(make_client, "c-waiters", retries=0, query_url=narrow.base_url)
        start.wait()
        try:
            client.order(placed.order_id, min_version=99)
        except (ProjectionBehind, TooManyWaiters) as exc:
            outcomes.append(type(exc))

    readers = [threading.Thread(target=wait_for_version_99) for _ in range(2)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(30)
    narrow.stop()

    # Both asked at once: one waited its 5 s in vain, the other was turned away at once.
    assert sorted(o.__name__ for o in outcomes) == ["ProjectionBehind", "TooManyWaiters"]
