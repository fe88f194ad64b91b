"""The host of the relay leader killed under load (its command API with every worker and its
relay, kill -9 at once), then brought back: clients carry on against the other command host, the
standby relay there takes the lease when it expires, and nothing is lost or counted twice.
"""

from __future__ import annotations

import time

import pytest

from tests.support.cluster_system import ClusterOrderSystem
from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    SteadyWorkload,
    kill_whole_group,
    lease_holder_pid,
    wait_for_load,
)
from tests.support.processes import wait_until

pytestmark = pytest.mark.cluster

CLIENTS = 6
ORDERS = 180
RATE = 12.0  # about 15 s of load


def test_the_relay_leaders_host_killed_and_the_standby_takes_over(
    cluster_system: ClusterOrderSystem, started: float
) -> None:
    system = cluster_system
    workload = SteadyWorkload(
        system.command_urls(), ORDERS, RATE, seed=1502, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)

    pids = [relay.pid for relay in system.relays]
    leader_pid = wait_until(
        lambda: (pid := lease_holder_pid(system)) in pids and pid, 30, "no relay holds the lease"
    )
    host = pids.index(leader_pid)
    standby = system.relays[1 - host]
    kill_whole_group(system.command_apis[host], at_least=2)  # gunicorn master + its worker
    kill_whole_group(system.relays[host])
    killed_at = time.monotonic()
    wait_until(lambda: lease_holder_pid(system) == standby.pid, 30, "the standby never took over")
    took_over_after = time.monotonic() - killed_at
    system.restart(system.command_apis[host])
    system.restart(system.relays[host])
    load.join()

    assert "acquired the relay lease" in standby.output()
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    finish_scenario(
        "cluster: relay leader's host kill -9",
        system,
        workload.acknowledged,
        workload.retries,
        started,
        f"host {host + 1} killed; {standby.name} took the lease after {took_over_after:.1f}s",
        orders=ORDERS,
    )
