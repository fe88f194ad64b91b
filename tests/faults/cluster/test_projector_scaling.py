"""Projectors scaled 1 -> 3 -> 1 under load: every join and every leave rebalances the six
partitions of one consumer group while events stream in; the read model still holds every
acknowledged command exactly once.
"""

from __future__ import annotations

import pytest

from tests.support.cluster_system import ClusterOrderSystem
from tests.support.fault_report import finish_scenario
from tests.support.faults import SteadyWorkload, wait_for_load

pytestmark = pytest.mark.cluster

CLIENTS = 6
ORDERS = 180
RATE = 12.0  # about 15 s of load


def test_projectors_scaled_from_one_to_three_and_back_under_load(
    cluster_system: ClusterOrderSystem, started: float
) -> None:
    system = cluster_system
    first, *others = system.projectors
    for projector in others:  # 3 -> 1 before the load: one projector owns every partition
        assert projector.stop(30) == 0, projector.tail()
    workload = SteadyWorkload(
        system.command_urls(), ORDERS, RATE, seed=1504, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)

    for projector in others:  # 1 -> 3
        log_size = projector.output_size()
        projector.start()
        projector.wait_for_output("projector started", 60, after=log_size)
    wait_for_load(workload, 100)
    for projector in others:  # 3 -> 1, a clean leave each
        assert projector.stop(30) == 0, projector.tail()
    load.join()

    assert first.is_running
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    finish_scenario(
        "cluster: projectors 1 -> 3 -> 1",
        system,
        workload.acknowledged,
        workload.retries,
        started,
        "2 joins and 2 leaves of the group under load",
        orders=ORDERS,
    )
