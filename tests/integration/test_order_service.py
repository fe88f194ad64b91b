"""The application layer on a real SQLite file: concurrent commands resolve to real outcomes."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from command_service.adapters.event_store import EventStore
from command_service.application.accounts import AccountService
from command_service.application.commands import CommandContext
from command_service.application.order_versions import VersionConflict
from command_service.application.orders import OrderService
from command_service.domain.account import DepositFunds, OpenAccount
from command_service.domain.errors import InvalidTransition
from command_service.domain.order import (
    ChangeOrderStatus,
    OrderLine,
    OrderStatus,
    PlaceOrder,
)
from shared.contract.principal import ACCOUNTS_DEPOSIT, ACCOUNTS_WRITE, ORDERS_WRITE, Principal
from shared.infra.db import create_database_engine
from shared.infra.dev_keys import DEV_ISSUER

# Customer c-1's own token: it opens its account, places and pays its orders.
C1 = Principal("user-c-1", DEV_ISSUER, frozenset({ORDERS_WRITE, ACCOUNTS_WRITE}), "c-1")
GATEWAY = Principal("payment-gateway", DEV_ISSUER, frozenset({ACCOUNTS_DEPOSIT}))


def as_c1() -> CommandContext:
    return CommandContext(principal=C1)


@pytest.fixture
def service(tmp_path: Path) -> OrderService:
    store = EventStore(create_database_engine(f"sqlite:///{tmp_path / 'events.db'}"))
    store.create_schema()
    # c-1 can pay for every order these tests place.
    accounts = AccountService(store)
    accounts.open_account(OpenAccount("c-1"), as_c1())
    accounts.deposit(DepositFunds("c-1", 1_000_000), CommandContext(principal=GATEWAY))
    return OrderService(store, retry_attempts=20)


def run_concurrently(count: int, action: object) -> list[str]:
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        try:
            action()  # type: ignore[operator]
            result = "ok"
        except InvalidTransition:
            result = "invalid-transition"
        except VersionConflict:
            result = "version-conflict"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_concurrent_identical_status_changes_one_wins_rest_are_real_conflicts(
    service: OrderService,
) -> None:
    service.place_order(PlaceOrder("o-1", "c-1", (OrderLine("p", 1, 100),)), as_c1())
    command = ChangeOrderStatus("o-1", OrderStatus.PAID)
    outcomes = run_concurrently(8, lambda: service.change_status(command, None, as_c1()))
    # Without an expected version a clash is retried, so the losers see the real reason:
    # the order is already PAID.
    assert outcomes == ["invalid-transition"] * 7 + ["ok"]
    assert [e.version for e in service.order_events("o-1")] == [1, 2]


def test_concurrent_changes_with_expected_version_one_wins_rest_409(
    service: OrderService,
) -> None:
    service.place_order(PlaceOrder("o-1", "c-1", (OrderLine("p", 1, 100),)), as_c1())
    command = ChangeOrderStatus("o-1", OrderStatus.PAID)
    outcomes = run_concurrently(8, lambda: service.change_status(command, 1, as_c1()))
    # With one, the client asked for version 1 and gets a 409 once someone else moved it on.
    assert outcomes == ["ok"] + ["version-conflict"] * 7
    assert [e.version for e in service.order_events("o-1")] == [1, 2]


def test_concurrent_identical_placements_are_one_order(service: OrderService) -> None:
    command = PlaceOrder("o-1", "c-1", (OrderLine("p", 3, 250),))
    results: list[tuple[int, int]] = []

    def place() -> None:
        result = service.place_order(command, as_c1())
        results.append((result.version, result.position))

    assert run_concurrently(8, place) == ["ok"] * 8
    assert set(results) == {(1, 3)}  # after the account's two events
    assert len(service.order_events("o-1")) == 1
