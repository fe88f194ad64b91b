"""kill -9 of the broker that leads the most partitions, under load from several clients, then
restart it: the other two keep the topic writable (replication factor 3, min.insync.replicas
2, the relay's acks=all), leaders move to them, and once the node is back and in sync the read
model holds every acknowledged command exactly once. The system is the scale-out shape: two
command hosts on one PostgreSQL log (clients alternate between them), the relays' leader and
standby, three projectors in one group (tests/support/cluster_system.py).
"""

from __future__ import annotations

import time

import pytest

from devtools.kafka_cluster import KafkaCluster
from tests.support.cluster_system import ClusterOrderSystem
from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    SteadyWorkload,
    published_position,
    wait_for_load,
)
from tests.support.processes import wait_until

pytestmark = pytest.mark.cluster

CLIENTS = 6
ORDERS = 240
RATE = 12.0  # about 20 s of load: before, during and after the broker's death
DOWN_S = 5.0  # the node stays dead this long after its partitions moved


def test_kill_9_of_the_busiest_leader_under_load_then_restart(
    cluster_system: ClusterOrderSystem, cluster: KafkaCluster, started: float
) -> None:
    system = cluster_system
    workload = SteadyWorkload(
        system.command_urls(), ORDERS, RATE, seed=1501, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)

    victim = cluster.busiest_leader(system.topic)
    led = cluster.leader_counts(system.topic)[victim.node_id]
    try:
        victim.kill()
        killed_at = time.monotonic()
        cluster.wait_until_leaders_avoid(system.topic, victim.node_id, timeout=60)
        moved_after = time.monotonic() - killed_at
        time.sleep(DOWN_S)  # the outage itself, not a wait for a condition
        # Still with one node dead: two in-sync replicas take the relay's acks=all writes, so
        # it publishes everything the log holds by now.
        head = system.event_log()[-1].position
        wait_until(
            lambda: published_position(system) >= head,
            60,
            lambda: f"relay stuck at {published_position(system)} of {head} with a node dead",
        )
        back_at = time.monotonic()
    finally:
        if not victim.is_running:
            cluster.restart(victim.node_id)
    during = workload.acknowledged_between(killed_at, back_at)
    cluster.wait_fully_replicated(system.topic, timeout=90)
    load.join()

    assert during > 0, "commands must be acknowledged while a broker is dead"
    assert workload.retries == 0, "Kafka is not on the command path"
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    finish_scenario(
        "cluster: busiest leader kill -9",
        system,
        workload.acknowledged,
        workload.retries,
        started,
        f"node {victim.node_id} led {led}/6; leaders moved in {moved_after:.1f}s; "
        f"relay published to {head} with it dead",
        orders=ORDERS,
    )
