"""The cluster fault scenarios' system: three brokers, PostgreSQL, two command hosts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.kafka_cluster import KafkaCluster
from shared.infra.kafka import ensure_topic
from tests.support.cluster_system import ClusterOrderSystem, PostgresServiceRunner
from tests.support.postgres import find_pg_bin, throwaway_postgres

TOPIC = "orders.cluster-faults"


@pytest.fixture
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three brokers with the topic as make run-cluster makes it (6 partitions, RF 3)."""
    kafka = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"))
    kafka.start()
    try:
        ensure_topic(kafka.bootstrap_servers, TOPIC, 6, 3)
        yield kafka
    finally:
        kafka.stop()


@pytest.fixture
def cluster_postgres() -> Iterator[tuple[str, str]]:
    """(event log URL, read model URL): two databases of a private PostgreSQL server."""
    psycopg = pytest.importorskip("psycopg")
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    with throwaway_postgres(bin_dir) as url:
        port = url.rsplit(":", 1)[1].split("/")[0]
        with psycopg.connect(
            host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute("CREATE DATABASE events")
            conn.execute("CREATE DATABASE read_model")
        base = url.rsplit("/", 1)[0]
        yield f"{base}/events", f"{base}/read_model"


@pytest.fixture
def cluster_system(
    started: float,
    tmp_path: Path,
    cluster: KafkaCluster,
    cluster_postgres: tuple[str, str],
) -> Iterator[ClusterOrderSystem]:
    """Two command hosts, two relays, a query API and three projectors, started."""
    event_store_url, read_model_url = cluster_postgres
    with PostgresServiceRunner(tmp_path, event_store_url) as runner:
        system = ClusterOrderSystem(runner, cluster.bootstrap_servers, TOPIC, read_model_url)
        yield system.start()
