"""End to end: real processes, real Kafka, real HTTP. Whatever crashes, every GET view ends up
exactly where the event log says it should, and every acknowledged command is in it.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from orders_client import Client, LineItem, Order, ProjectionBehind
from query_service.read_model.tables import create_read_model_engine
from tests.integration.query_support import view_rows
from tests.support.checks import assert_acknowledged_present, assert_views_match
from tests.support.order_system import OrderSystem
from tests.support.processes import console_script, wait_until
from tests.support.workload import Workload, bearer_token

pytestmark = pytest.mark.kafka

CLIENT_THREADS = 8


def test_every_view_converges_to_what_the_event_log_implies(system: OrderSystem) -> None:
    workload = Workload(
        lambda: system.command_api.base_url, orders=300, headers=system.admin_headers
    )

    workload.run(CLIENT_THREADS)

    expected = system.wait_converged()
    log = system.event_log()
    assert len(expected.orders) == 300
    assert {o.status for o in expected.orders.values()} == {
        "PLACED",
        "PAID",
        "SHIPPED",
        "DELIVERED",
        "CANCELLED",
    }
    assert_acknowledged_present(workload.acknowledged, log, system.projected_versions())
    # Without faults each order command was acknowledged once and wrote one order event.
    order_acks = [a for a in workload.acknowledged if a.kind != "deposit" and a.kind != "open"]
    order_acks = [a for a in order_acks if not a.stream_id.startswith("account:")]
    assert len(order_acks) == sum(1 for e in log if not e.stream_id.startswith("account:"))
    assert workload.retries == 0
    assert_views_match(system.query_api.base_url, expected, system.admin_headers)


def test_read_your_writes_with_min_version(system: OrderSystem) -> None:
    with Client(
        system.command_api.base_url,
        system.query_api.base_url,
        token=bearer_token(system.admin_headers),
    ) as client:
        client.open_account("c-ryw", initial_deposit_cents=1000)
        placed = client.place_order("c-ryw", [LineItem("p-1", 2, 350)])
        paid = client.change_status(placed.order_id, "PAID")

        # The first read may come before the projector has the order; the wait covers the gap.
        def read() -> Order | None:
            try:
                return client.order(placed.order_id, min_version=paid.version)
            except ProjectionBehind:
                return None

        order = wait_until(read, 30, "the projection never reached the acknowledged version")
    assert order.status == "PAID"
    assert order.version == paid.version == 2
    assert order.total_cents == 700


def test_projector_killed_mid_stream_converges_without_counting_twice(
    system: OrderSystem,
) -> None:
    workload = Workload(
        lambda: system.command_api.base_url, orders=300, seed=11, headers=system.admin_headers
    )
    load = workload.start(CLIENT_THREADS)
    wait_until(lambda: len(system.projected_versions()) >= 40, 60, "projector never got going")

    system.projector.kill()
    killed_at = len(system.projected_versions())
    time.sleep(1.0)  # the load goes on; the relay keeps publishing into the topic
    system.restart(system.projector)
    load.join()

    assert not workload.unexpected
    expected = system.wait_converged()
    assert killed_at < len(expected.orders), "the kill should land mid-stream"
    # Redelivered events (offsets not yet committed at the kill) must not count twice: the
    # totals below would be off if any event had been applied again.
    assert_views_match(system.query_api.base_url, expected, system.admin_headers)
    assert system.projector.output().count("----- starting projector") == 2


def test_relay_and_command_api_killed_under_load_lose_no_acknowledged_command(
    system: OrderSystem,
) -> None:
    workload = Workload(
        lambda: system.command_api.base_url, orders=300, seed=23, headers=system.admin_headers
    )
    load = workload.start(CLIENT_THREADS)
    wait_until(lambda: workload.done >= 60, 60, "load never got going")

    system.relay.kill()
    wait_until(lambda: workload.done >= 110, 60, "load stalled without the relay")
    system.command_api.kill()  # master and workers: requests in flight are cut
    time.sleep(1.0)
    system.restart(system.command_api)
    system.restart(system.relay)
    load.join()

    assert not workload.unexpected
    expected = system.wait_converged()
    log = system.event_log()
    projected = system.projected_versions()
    acknowledged = assert_acknowledged_present(workload.acknowledged, log, projected)
    print(
        f"acknowledged {acknowledged}, in log {len(log)}, retries {workload.retries}, "
        f"orders {len(expected.orders)}"
    )
    assert workload.retries > 0, "the command API kill should have been felt by the clients"
    assert len(expected.orders) == 300, "every order was placed, exactly once"
    assert_views_match(system.query_api.base_url, expected, system.admin_headers)


def test_rebuild_gives_the_same_tables_as_the_live_projection(
    system: OrderSystem, tmp_path_factory: pytest.TempPathFactory
) -> None:
    Workload(
        lambda: system.command_api.base_url, orders=200, seed=5, headers=system.admin_headers
    ).run(CLIENT_THREADS)
    system.wait_converged()
    live = create_read_model_engine(system.read_model_url)
    rebuilt_url = f"sqlite:///{tmp_path_factory.mktemp('rebuild') / 'read_model.db'}"
    env = system.runner.base_env(**{**system.query_env(), "READ_MODEL_URL": rebuilt_url})

    result = subprocess.run(
        console_script("query-rebuild", "query_service.rebuild"),
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "rebuilt the read model from" in result.stderr
    rebuilt = create_read_model_engine(rebuilt_url)
    try:
        assert view_rows(rebuilt) == view_rows(live)
    finally:
        rebuilt.dispose()
        live.dispose()
