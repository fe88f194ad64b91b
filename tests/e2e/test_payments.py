"""Money end to end: two command API processes race to spend one balance; the log and the
read side agree that it was spent once, and statements match the log after mixed load.
"""

from __future__ import annotations

import multiprocessing

import pytest

from orders_client import Client, LineItem
from tests.support.checks import assert_views_match
from tests.support.order_system import OrderSystem
from tests.support.workload import Workload, bearer_token, pay_in_lockstep

pytestmark = pytest.mark.kafka

CUSTOMERS = 15


def test_two_processes_paying_two_orders_with_funds_for_one_spend_it_once(
    system: OrderSystem,
) -> None:
    # A second, independent command API on the same event log: two server processes writing.
    second_api = system.runner.command_api(name="command-api-2")
    first_url, second_url = system.command_api.base_url, second_api.base_url
    client = Client(first_url, token=bearer_token(system.admin_headers))
    pairs: list[tuple[str, str]] = []
    for n in range(CUSTOMERS):
        customer_id = f"race-{n}"
        client.open_account(customer_id, initial_deposit_cents=10_000)
        line = LineItem("p-race", 3, 2000)  # 60.00 of the 100.00
        a, b = (client.place_order(customer_id, [line], f"{customer_id}-{side}") for side in "ab")
        pairs.append((a.order_id, b.order_id))
    client.close()

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    results = context.Queue()
    payers = [
        context.Process(
            target=pay_in_lockstep,
            args=(
                url,
                [pair[i] for pair in pairs],
                barrier,
                results,
                f"payer-{i}",
                system.admin_headers,
            ),
        )
        for i, url in enumerate((first_url, second_url))
    ]
    for payer in payers:
        payer.start()
    outcomes = [results.get(timeout=120) for _ in range(2 * CUSTOMERS)]
    for payer in payers:
        payer.join(30)
        assert payer.exitcode == 0

    by_order = {order_id: (status, problem) for _, order_id, status, problem in outcomes}
    for a, b in pairs:
        statuses = sorted([by_order[a][0], by_order[b][0]])
        assert statuses == [200, 409], f"{a}, {b}: {by_order[a]}, {by_order[b]}"
        loser = a if by_order[a][0] == 409 else b
        assert by_order[loser][1].endswith(":insufficient-funds")

    # The log: one debit per customer, balance 40.00 (ExpectedViews.fold also checks that no
    # balance ever went below zero and that each movement states the right balance).
    expected = system.wait_converged()
    for n in range(CUSTOMERS):
        account = expected.accounts[f"race-{n}"]
        assert [line[1] for line in account.statement] == ["DEPOSIT", "DEBIT"]
        assert account.balance_cents == 4000
    # The read side agrees, view by view.
    assert_views_match(system.query_api.base_url, expected, system.admin_headers)


def test_statements_and_balances_match_the_log_after_mixed_load(system: OrderSystem) -> None:
    workload = Workload(
        lambda: system.command_api.base_url, orders=240, seed=31, headers=system.admin_headers
    )
    workload.run(threads=8)

    expected = system.wait_converged()
    movements = [line[1] for a in expected.accounts.values() for line in a.statement]
    # Every kind of movement happened: deposits, debits for payments, credits for refunds.
    assert {"DEPOSIT", "DEBIT", "CREDIT"} <= set(movements)
    assert_views_match(system.query_api.base_url, expected, system.admin_headers)
