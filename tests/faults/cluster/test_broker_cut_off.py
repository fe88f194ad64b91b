"""The active controller, which also leads its share of the partitions, cut off from its peers and
from every client (its network namespace's link goes down, devtools/netns.py) under load from
several clients, then healed: the two others elect a new controller, which fences it. The JVM
keeps running and believes itself leader; leaders move to the two others, and once it is back
and in sync the read model holds every acknowledged command exactly once. Unlike a kill, nothing
answers: connections to it just hang. Earlier runs stalled the relay 40-60+ s after the leaders
moved: each producer it rebuilt after a failed batch bootstrapped from a server picked at random,
the cut one ate the whole bootstrap timeout (shared/infra/kafka.py now leaves it out), and its
CreateTopics was forwarded over a channel still waiting on the cut controller (now sent at the
first build only). controller.socket.timeout.ms=5 s bounds such broker-side waits (default 30 s).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from devtools.kafka_cluster import ClusterNode, KafkaCluster
from devtools.netns import NetworkNamespaces, available
from tests.support.cluster_system import ClusterOrderSystem
from tests.support.fault_report import finish_scenario
from tests.support.faults import SteadyWorkload, published_position, wait_for_load
from tests.support.processes import wait_until

pytestmark = pytest.mark.cluster

CLIENTS = 6
ORDERS = 240
RATE = 12.0  # about 20 s of load: before, during and after the cut
CUT_S = 3.0  # the node stays cut off this long after its partitions moved (~10 s in all)
NODES = ("node-1", "node-2", "node-3")


@pytest.fixture
def network() -> Iterator[NetworkNamespaces]:
    """One network namespace per broker on a private bridge; removed after."""
    reason = available()
    if reason is not None:
        pytest.skip(f"cannot cut a broker off: {reason}")
    with NetworkNamespaces(NODES) as net:
        yield net


@pytest.fixture
def cluster(
    tmp_path_factory: pytest.TempPathFactory, network: NetworkNamespaces
) -> Iterator[KafkaCluster]:
    """The conftest's cluster, each broker in its own namespace (overrides conftest's `cluster`)."""
    kafka = KafkaCluster(
        tmp_path_factory.mktemp("kafka-cluster"),
        hosts=[network.address[name] for name in NODES],
        command_prefixes=[network.command_prefix(name) for name in NODES],
        # A broker's requests to the controller (ISR changes) wait this long on a connection
        # to a cut-off one, which neither answers nor resets (default 30 s): see the docstring.
        properties={"controller.socket.timeout.ms": "5000"},
    )
    kafka.start()
    try:
        yield kafka  # conftest's cluster_topic makes the scenario's topic on it
    finally:
        for name in NODES:
            network.heal(name)
        kafka.stop()


def leaders_seen_by(cluster: KafkaCluster, node: ClusterNode, topic: str) -> Counter[int]:
    """node id -> partitions it leads, as `node`'s metadata says (the cut node's is stale)."""
    with cluster.admin(node=node) as admin:
        topics = admin.describe_topics([topic])
    partitions = [p for t in topics if t.get("name") == topic for p in t["partitions"]]
    return Counter(p["leader_id"] for p in partitions)


def active_controller(cluster: KafkaCluster) -> ClusterNode:
    """The node that leads the KRaft controller quorum."""
    with cluster.admin() as admin:
        quorum = admin.describe_metadata_quorum()
    return cluster.node(quorum["topics"][0]["partitions"][0]["leader_id"])


def test_active_controller_cut_off_under_load_then_healed(
    cluster_system: ClusterOrderSystem,
    cluster: KafkaCluster,
    network: NetworkNamespaces,
    started: float,
) -> None:
    system = cluster_system
    workload = SteadyWorkload(
        system.command_urls(), ORDERS, RATE, seed=1506, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)

    # Harder than the busiest leader (with six partitions on three nodes it leads as many): the
    # two others elect a new controller before either can fence it, and their channels to the
    # controller still point at it.
    victim = active_controller(cluster)
    led = cluster.leader_counts(system.topic)[victim.node_id]
    witness = next(node for node in cluster.nodes if node is not victim)
    name = NODES[victim.node_id - 1]
    try:
        network.cut(name)
        cut_at = time.monotonic()

        def moved() -> bool:
            try:
                seen = leaders_seen_by(cluster, witness, system.topic)
            except Exception:  # a request that went to the cut node's address
                return False
            return seen[victim.node_id] == 0 and seen[-1] == 0

        wait_until(moved, 60, lambda: f"partitions still led by cut-off node {victim.node_id}")
        moved_after = time.monotonic() - cut_at
        time.sleep(CUT_S)  # the outage itself, not a wait for a condition
        assert victim.is_running, "the cut-off JVM is alive, only unreachable"
        head = system.event_log()[-1].position
        wait_until(
            lambda: published_position(system) >= head,
            60,
            lambda: f"relay stuck at {published_position(system)} of {head} with a node cut off",
        )
        back_at = time.monotonic()
    finally:
        network.heal(name)
    cut_for = time.monotonic() - cut_at
    during = workload.acknowledged_between(cut_at, back_at)
    cluster.wait_fully_replicated(system.topic, timeout=90)
    load.join()

    assert during > 0, "commands must be acknowledged while a broker is cut off"
    assert workload.retries == 0, "Kafka is not on the command path"
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    finish_scenario(
        "cluster: active controller cut off",
        system,
        workload.acknowledged,
        workload.retries,
        started,
        f"node {victim.node_id} led {led}/6; leaders moved in {moved_after:.1f}s; "
        f"relay published to {head} with it cut off; healed after {cut_for:.1f}s",
        orders=ORDERS,
    )
