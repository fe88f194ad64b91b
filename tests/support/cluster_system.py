"""The scale-out shape for cluster fault tests: two command hosts (API and relay each, the relays
sharing one lease), three projectors in one group and a query API, on one PostgreSQL event log
and read model, against a multi-broker Kafka cluster.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools.kafka_cluster import KafkaCluster
from scripts.cluster_layout import CLUSTER_PARTITIONS, CLUSTER_REPLICATION_FACTOR
from shared.infra.kafka import ensure_topic
from tests.support.order_system import OrderSystem
from tests.support.processes import HttpService, ServiceProcess, ServiceRunner

COMMAND_HOSTS = 2
PROJECTORS = 3


@dataclass(frozen=True)
class KafkaPaths:
    """How the checks, the relays and the projectors reach the cluster (the last two may go
    through fault proxies)."""

    bootstrap: str
    relay: str | None = None
    projector: str | None = None


@contextmanager
def running_with_topic(cluster: KafkaCluster, topic: str) -> Iterator[KafkaCluster]:
    """`cluster` started, with `topic` as make run-cluster makes it (6 partitions, RF 3)."""
    cluster.start()
    try:
        ensure_topic(
            cluster.bootstrap_servers, topic, CLUSTER_PARTITIONS, CLUSTER_REPLICATION_FACTOR
        )
        cluster.wait_for_topic(topic)
        yield cluster
    finally:
        cluster.stop()


class PostgresServiceRunner(ServiceRunner):
    """A ServiceRunner whose services share a PostgreSQL event log instead of a SQLite file."""

    def __init__(self, workdir: Path, event_store_url: str) -> None:
        self._event_store_url = event_store_url  # before the base class prepares the schema
        super().__init__(workdir)

    @property
    def event_store_url(self) -> str:
        return self._event_store_url


class ClusterOrderSystem(OrderSystem):
    """OrderSystem with two command hosts, two relays and three projectors on PostgreSQL."""

    def __init__(
        self,
        runner: PostgresServiceRunner,
        bootstrap: str,
        topic: str,
        read_model_url: str,
        relay_bootstrap: str | None = None,
        projector_bootstrap: str | None = None,
    ) -> None:
        """bootstrap is for the checks; the relays and projectors may reach Kafka otherwise
        (through fault proxies)."""
        super().__init__(runner, bootstrap, topic)
        self.relay_bootstrap = relay_bootstrap or bootstrap
        self.projector_bootstrap = projector_bootstrap or bootstrap
        self._read_model_url = read_model_url
        self.command_apis: list[HttpService] = []
        self.relays: list[ServiceProcess] = []
        self.projectors: list[ServiceProcess] = []

    @property
    def read_model_url(self) -> str:
        return self._read_model_url

    def start(self) -> ClusterOrderSystem:
        """Start every process; wait until the APIs answer."""
        for host in range(1, COMMAND_HOSTS + 1):
            self.command_apis.append(self.runner.command_api(f"command-api-{host}"))
        self._command_api = self.command_apis[0]
        for host in range(1, COMMAND_HOSTS + 1):
            # A short lease, so the standby takes over within seconds if the leader dies.
            relay = self.runner.relay(
                self.relay_bootstrap, self.topic, name=f"relay-{host}", RELAY_LEASE_SECONDS="3"
            )
            self.relays.append(relay)
        self._relay = self.relays[0]
        self._query_api = self.runner.start_http(
            "query-api",
            "query-api",
            "query_service.server",
            "QUERY_API_HOST",
            "QUERY_API_PORT",
            **self.query_env(),
        )
        self.projectors = [self.start_projector(f"projector-{n}") for n in range(1, PROJECTORS + 1)]
        self._projector = self.projectors[0]
        for projector in self.projectors:
            # Past its start-up (schema, consumer): a fault injected later finds it running.
            projector.wait_for_output("projector started", 60)
        return self

    def query_env(self) -> dict[str, str]:
        return super().query_env() | {"KAFKA_BOOTSTRAP_SERVERS": self.projector_bootstrap}

    def command_urls(self) -> Callable[[], str]:
        """A client's next command API: the hosts in turn, as a load balancer would."""
        hosts = itertools.cycle(self.command_apis)
        lock = threading.Lock()

        def next_url() -> str:
            with lock:
                return next(hosts).base_url

        return next_url
