"""devtools/kafka_cluster.py: three real KRaft brokers that survive losing one of them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka.admin import ConfigResource, ConfigResourceType

from devtools.kafka_cluster import KafkaCluster
from shared.infra.config import Settings
from shared.infra.kafka import create_producer
from tests.support.cluster_system import running_with_topic

pytestmark = pytest.mark.cluster

TOPIC = "cluster.events"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three brokers on free ports, the topic as make run-cluster makes it; stopped after."""
    with running_with_topic(KafkaCluster(tmp_path_factory.mktemp("kafka-cluster")), TOPIC) as kafka:
        yield kafka


def _send(cluster: KafkaCluster, count: int) -> None:
    """Produce with the relay's own producer (acks=all, idempotent); every send acknowledged."""
    settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap_servers})
    producer = create_producer(settings, client_id="cluster-test")
    try:
        futures = [producer.send(TOPIC, key=f"k{i}".encode(), value=b"v") for i in range(count)]
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()


def test_the_topic_is_replicated_three_times_with_two_in_sync_required(
    cluster: KafkaCluster,
) -> None:
    partitions = cluster.partitions(TOPIC)
    assert len(partitions) == 6
    for partition in partitions:
        assert sorted(partition["replica_nodes"]) == [1, 2, 3]
    # Every broker leads some partitions: the topic's load is spread.
    counts = cluster.leader_counts(TOPIC)
    assert sum(counts.values()) == 6
    assert all(count >= 1 for count in counts.values()), counts
    with cluster.admin() as admin:
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, TOPIC)], config_filter="all"
        )
    assert configs["topic"][TOPIC]["min.insync.replicas"]["value"] == "2"


def test_the_busiest_leader_is_the_one_leading_the_most_partitions(
    cluster: KafkaCluster,
) -> None:
    counts = cluster.leader_counts(TOPIC)
    busiest = cluster.busiest_leader(TOPIC)
    assert counts[busiest.node_id] == max(counts.values())


def test_kill_9_of_the_busiest_leader_moves_its_partitions_and_acks_all_still_succeeds(
    cluster: KafkaCluster,
) -> None:
    _send(cluster, 50)
    victim = cluster.busiest_leader(TOPIC)
    victim.kill()
    try:
        assert not victim.is_running
        # Leaders move to the two survivors once the controller expires the dead broker.
        cluster.wait_until_leaders_avoid(TOPIC, victim.node_id, timeout=60)
        # Two replicas in sync meet min.insync.replicas=2: acks=all writes keep succeeding.
        _send(cluster, 50)
    finally:
        cluster.restart(victim.node_id)
    cluster.wait_fully_replicated(TOPIC)
    assert victim.is_ready()
    assert all(sorted(p["isr_nodes"]) == [1, 2, 3] for p in cluster.partitions(TOPIC))


def test_a_stopped_node_restarts_on_its_storage(cluster: KafkaCluster) -> None:
    node = cluster.node(3)
    cluster_id = node.cluster_id
    node.stop()
    assert not node.is_running
    cluster.restart(3)
    assert node.cluster_id == cluster_id
    assert {n.cluster_id for n in cluster.nodes} == {cluster_id}
    cluster.wait_fully_replicated(TOPIC)
