"""Network faults between the scale-out system and a three-broker cluster, injected by a real
fault proxy (Toxiproxy): every node has a listener per client kind advertised at a proxy of its
own, so both relays and all three projectors reach every broker only through their proxies.
Under steady load from several clients: 500 ms latency on every path, then bursts of connection
resets, then healed. Commands never wait on Kafka, the pipeline goes on through both faults,
and the read model ends with every acknowledged command exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from devtools.kafka_cluster import KafkaCluster
from devtools.toxiproxy import ToxiproxyServer
from tests.faults.cluster.conftest import TOPIC
from tests.support.cluster_system import ClusterOrderSystem, KafkaPaths
from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    SteadyWorkload,
    projected_events,
    published_position,
    wait_for_load,
)
from tests.support.network_faults import (
    OnEvery,
    ProxiedCluster,
    accepted_connections,
    proxied_cluster,
    reset_bursts,
)

pytestmark = pytest.mark.cluster

CLIENTS = 6
ORDERS = 200
RATE = 12.0  # about 17 s of load: before, during and after the faults
FAULT_S = 4.0
LATENCY_MS = 500


@pytest.fixture
def proxied(
    toxiproxy: ToxiproxyServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxiedCluster]:
    """The cluster with the topic, each node behind a relay proxy and a projector proxy."""
    toxiproxy.client.reset()
    with proxied_cluster(
        toxiproxy.client, tmp_path_factory.mktemp("kafka-cluster"), TOPIC
    ) as kafka:
        yield kafka


@pytest.fixture
def cluster(proxied: ProxiedCluster) -> KafkaCluster:
    """The proxied cluster (overrides conftest's `cluster`)."""
    return proxied.cluster


@pytest.fixture
def cluster_paths(proxied: ProxiedCluster) -> KafkaPaths:
    """Relays and projectors through their proxies; the checks straight to the brokers."""
    return KafkaPaths(proxied.bootstrap, proxied.relay_bootstrap, proxied.projector_bootstrap)


def test_latency_then_connection_resets_on_every_kafka_path(
    cluster_system: ClusterOrderSystem,
    proxied: ProxiedCluster,
    toxiproxy: ToxiproxyServer,
    started: float,
) -> None:
    system = cluster_system
    workload = SteadyWorkload(
        system.command_urls(), ORDERS, RATE, seed=1551, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)
    proxies = proxied.proxies()

    with OnEvery(proxies, lambda p: p.toxic("latency", {"latency": LATENCY_MS})):
        began = time.monotonic()
        published, applied = published_position(system), projected_events(system)
        time.sleep(FAULT_S)  # the fault itself, not a wait for a condition
        slow_published = published_position(system) - published
        slow_applied = projected_events(system) - applied
        slow_acks = workload.acknowledged_between(began, time.monotonic())

    before = {p.name: accepted_connections(toxiproxy, p) for p in proxies}
    published, applied = published_position(system), projected_events(system)
    bursts = reset_bursts(proxies, FAULT_S)
    reset_published = published_position(system) - published
    reset_applied = projected_events(system) - applied
    load.join()
    reconnected = sum(accepted_connections(toxiproxy, p) - before[p.name] for p in proxies)

    assert slow_acks > 0, "commands do not wait on Kafka"
    assert slow_published > 0 and slow_applied > 0, "with latency both go on, only slower"
    assert reconnected > 0, "no client reconnected after the resets"
    assert reset_published > 0 and reset_applied > 0, "between the resets both go on"
    assert workload.retries == 0, "Kafka is not on the command path"
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    finish_scenario(
        f"cluster: {LATENCY_MS} ms latency, then resets, on every Kafka path",
        system,
        workload.acknowledged,
        workload.retries,
        started,
        f"latency: {slow_published} published, {slow_applied} projected in {FAULT_S:.0f} s; "
        f"{bursts} reset bursts, {reconnected} reconnects",
        orders=ORDERS,
    )
