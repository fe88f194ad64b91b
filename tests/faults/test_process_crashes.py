"""kill -9 of each process under a steady load from several clients, then a restart; two relays
and two projectors at once. Whatever dies, nothing acknowledged is lost and nothing counts twice.
"""

from __future__ import annotations

import time

import pytest

from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    SteadyWorkload,
    kill_whole_group,
    lease_holder_pid,
    published_position,
    start_relay,
    wait_for_load,
)
from tests.support.order_system import OrderSystem
from tests.support.processes import wait_until

pytestmark = pytest.mark.kafka

CLIENTS = 8
ORDERS = 150
RATE = 15.0  # orders taken up per second: the load lasts about 10 s


def finish(
    name: str, system: OrderSystem, workload: SteadyWorkload, started: float, notes: str = ""
) -> None:
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    acknowledged, retries = workload.acknowledged, workload.retries
    finish_scenario(name, system, acknowledged, retries, started, notes, orders=ORDERS)


def test_command_api_killed_with_all_workers_then_restarted(
    system: OrderSystem, started: float
) -> None:
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=101, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 40)

    killed = kill_whole_group(system.command_api, at_least=3)  # gunicorn master + 2 workers
    time.sleep(1.0)  # the outage: clients keep sending and get connection refused
    system.restart(system.command_api)
    load.join()

    assert workload.retries > 0, "the clients should have felt the outage"
    finish("command API kill -9, restart", system, workload, started, f"{killed} procs killed")


def test_relay_killed_then_restarted(system: OrderSystem, started: float) -> None:
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=102, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 40)

    system.relay.kill()
    stuck_at = published_position(system)
    wait_for_load(workload, 70)  # the log grows while nothing publishes it
    assert published_position(system) == stuck_at
    system.restart(system.relay)
    load.join()

    assert workload.retries == 0, "the relay is not on the command path"
    finish("relay kill -9, restart", system, workload, started)


def test_two_relays_started_at_once_then_the_leader_killed(
    system: OrderSystem, started: float
) -> None:
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=103, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)

    system.relay.kill()  # its lease is left to expire (3 s)
    second = start_relay(system, "relay-2")
    system.restart(system.relay)  # both race for the lease the moment it expires
    relays = {system.relay.pid: system.relay, second.pid: second}
    leader_pid = wait_until(
        lambda: (pid := lease_holder_pid(system)) in relays and pid,
        30,
        "neither new relay took the lease",
    )
    leader = relays[leader_pid]
    standby = second if leader is system.relay else system.relay
    wait_for_load(workload, 100)
    leader.kill()
    wait_until(lambda: lease_holder_pid(system) == standby.pid, 30, "the standby never took over")
    load.join()

    assert workload.retries == 0
    assert "acquired the relay lease" in standby.output()
    finish(
        "two relays at once, leader kill -9",
        system,
        workload,
        started,
        f"leader {leader.name}, standby took over",
    )


def test_projector_killed_then_restarted(system: OrderSystem, started: float) -> None:
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=104, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_until(lambda: len(system.projected_versions()) >= 30, 60, "projector never got going")

    system.projector.kill()
    killed = time.monotonic()
    killed_at = len(system.projected_versions())
    wait_for_load(workload, 90)  # events pile up on the topic meanwhile
    mark = system.projector.output_size()
    system.restart(system.projector)
    # The group hands the partitions on once the dead member's session ends: the default
    # PROJECTOR_SESSION_TIMEOUT_MS (10 s), not kafka-python's 45 s.
    system.projector.wait_for_output(
        "positioned partitions from the read model", timeout=60, after=mark
    )
    waited = time.monotonic() - killed
    load.join()

    assert killed_at < ORDERS, "the kill should land mid-stream"
    assert waited < 25, f"partitions came back {waited:.0f} s after the kill"
    notes = f"partitions back {waited:.1f} s after the kill"
    finish("projector kill -9, restart", system, workload, started, notes)


def test_two_projectors_in_one_group_one_killed(system: OrderSystem, started: float) -> None:
    second = system.start_projector("projector-2")
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=105, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    # Both got partitions of the topic (3 partitions, 2 members) and applied from them.
    for projector in (system.projector, second):
        projector.wait_for_output("positioned partitions from the read model", timeout=60)
    wait_for_load(workload, 60)

    system.projector.kill()  # its partitions move to projector-2 after the session timeout
    wait_for_load(workload, 100)
    system.restart(system.projector)
    load.join()

    finish("two projectors, one kill -9", system, workload, started)
