"""The cluster fault scenarios' system: three brokers, PostgreSQL, two command hosts."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.kafka_cluster import KafkaCluster
from devtools.local_postgres import LocalPostgres, find_pg_bin
from devtools.ports import free_port
from tests.support.cluster_system import (
    ClusterOrderSystem,
    KafkaPaths,
    PostgresServiceRunner,
    running_with_topic,
)

TOPIC = "orders.cluster-faults"


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three brokers with the topic as make run-cluster makes it (6 partitions, RF 3)."""
    with running_with_topic(KafkaCluster(tmp_path_factory.mktemp("kafka-cluster")), TOPIC) as kafka:
        yield kafka


@pytest.fixture
def cluster_postgres() -> Iterator[LocalPostgres]:
    """A private PostgreSQL server with the databases `events` and `read_model`; removed after."""
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
        postgres.create_database("events")
        postgres.create_database("read_model")
        yield postgres
    finally:
        postgres.stop()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def cluster_paths(cluster: KafkaCluster) -> KafkaPaths:
    """Every process reaches the brokers directly (a scenario with fault proxies overrides it)."""
    return KafkaPaths(cluster.bootstrap_servers)


@pytest.fixture
def cluster_system(
    started: float,
    tmp_path: Path,
    cluster_paths: KafkaPaths,
    cluster_postgres: LocalPostgres,
) -> Iterator[ClusterOrderSystem]:
    """Two command hosts, two relays, a query API and three projectors, started."""
    event_store_url = cluster_postgres.url("events")
    read_model_url = cluster_postgres.url("read_model")
    with PostgresServiceRunner(tmp_path, event_store_url) as runner:
        system = ClusterOrderSystem(
            runner,
            cluster_paths.bootstrap,
            TOPIC,
            read_model_url,
            relay_bootstrap=cluster_paths.relay,
            projector_bootstrap=cluster_paths.projector,
        )
        yield system.start()
