"""The Kafka broker stopped for 10 s under load, then started again: commands go on being
acknowledged meanwhile, and once it is back the relay publishes the backlog and the read
model catches up, losing nothing and counting nothing twice.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from tests.support.fault_report import finish_scenario
from tests.support.faults import SteadyWorkload, published_position, wait_for_load
from tests.support.order_system import OrderSystem

if TYPE_CHECKING:
    from devtools.local_kafka import LocalKafka

pytestmark = pytest.mark.kafka

CLIENTS = 8
ORDERS = 240
RATE = 12.0  # about 20 s of load: before, during and after the outage
OUTAGE_S = 10.0


def test_broker_stopped_for_ten_seconds_under_load(
    system: OrderSystem, local_kafka: LocalKafka, started: float
) -> None:
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=201, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)

    try:
        local_kafka.stop()
        down_at = time.monotonic()
        published_when_down = published_position(system)
        time.sleep(OUTAGE_S)  # the outage itself, not a wait for a condition
        up_at = time.monotonic()
    finally:
        if not local_kafka.is_running:
            local_kafka.start()
    during = workload.acknowledged_between(down_at, up_at)
    backlog = len(system.event_log()) - published_when_down
    load.join()

    assert during > 0, "commands must be acknowledged while Kafka is down"
    assert workload.retries == 0, "Kafka is not on the command path"
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    finish_scenario(
        "Kafka broker down 10 s",
        system,
        workload.acknowledged,
        workload.retries,
        started,
        f"{during} acked while down, backlog {backlog}",
        orders=ORDERS,
    )
