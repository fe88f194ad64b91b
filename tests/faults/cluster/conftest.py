"""The cluster fault scenarios' system: three brokers, PostgreSQL, two command hosts.

The brokers and the PostgreSQL server are started once for the whole run and shared: each
scenario gets a fresh topic and fresh databases on them, and leaves every broker running
again (each scenario restarts or heals what it broke). A scenario that needs brokers built
otherwise (in network namespaces, behind proxies) overrides `cluster`.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.kafka_cluster import KafkaCluster
from devtools.local_postgres import LocalPostgres, find_pg_bin
from devtools.ports import free_port
from scripts.cluster_layout import CLUSTER_PARTITIONS, CLUSTER_REPLICATION_FACTOR
from shared.infra.kafka import ensure_topic
from tests.support.cluster_system import (
    ClusterOrderSystem,
    KafkaPaths,
    PostgresServiceRunner,
)

TOPIC = "orders.cluster-faults"


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three brokers for every scenario that does not build its own; stopped at the end."""
    kafka = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"))
    kafka.start()
    try:
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def cluster(shared_cluster: KafkaCluster) -> KafkaCluster:
    """The shared brokers, every one running (a scenario that failed half-way may not have
    restarted its victim)."""
    for node in shared_cluster.nodes:
        if not node.is_running:
            shared_cluster.restart(node.node_id)
    return shared_cluster


@pytest.fixture
def cluster_topic(cluster: KafkaCluster) -> str:
    """A fresh topic as make run-cluster makes it (6 partitions, RF 3), known to every broker."""
    topic = f"{TOPIC}-{uuid.uuid4().hex[:8]}"
    ensure_topic(cluster.bootstrap_servers, topic, CLUSTER_PARTITIONS, CLUSTER_REPLICATION_FACTOR)
    cluster.wait_for_topic(topic)
    return topic


@pytest.fixture(scope="session")
def shared_postgres() -> Iterator[LocalPostgres]:
    """A private PostgreSQL server for every scenario; removed at the end."""
    pytest.importorskip("psycopg")
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    # As root the server runs as the postgres user, who cannot enter pytest's private tmp_path.
    parent = Path(tempfile.mkdtemp(prefix="cluster-faults-pg-"))
    parent.chmod(0o711)
    postgres = LocalPostgres(parent / "postgres", free_port(), bin_dir)
    try:
        postgres.start()
        yield postgres
    finally:
        postgres.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def cluster_postgres(shared_postgres: LocalPostgres) -> LocalPostgres:
    """The shared server, running (a scenario may have restarted it)."""
    if not shared_postgres.is_running:
        shared_postgres.start()
    return shared_postgres


@pytest.fixture
def cluster_databases(cluster_postgres: LocalPostgres) -> tuple[str, str]:
    """URLs of a fresh event log database and a fresh read model database."""
    suffix = uuid.uuid4().hex[:8]
    urls = []
    for kind in ("events", "read_model"):
        name = f"{kind}_{suffix}"
        cluster_postgres.create_database(name)
        urls.append(cluster_postgres.url(name))
    return urls[0], urls[1]


@pytest.fixture
def cluster_paths(cluster: KafkaCluster) -> KafkaPaths:
    """Every process reaches the brokers directly (a scenario with fault proxies overrides it)."""
    return KafkaPaths(cluster.bootstrap_servers)


@pytest.fixture
def cluster_system(
    started: float,
    tmp_path: Path,
    cluster_paths: KafkaPaths,
    cluster_topic: str,
    cluster_databases: tuple[str, str],
) -> Iterator[ClusterOrderSystem]:
    """Two command hosts, two relays, a query API and three projectors, started."""
    event_store_url, read_model_url = cluster_databases
    with PostgresServiceRunner(tmp_path, event_store_url) as runner:
        system = ClusterOrderSystem(
            runner,
            cluster_paths.bootstrap,
            cluster_topic,
            read_model_url,
            relay_bootstrap=cluster_paths.relay,
            projector_bootstrap=cluster_paths.projector,
        )
        yield system.start()
