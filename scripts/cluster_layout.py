"""The scale-out shape `make run-cluster` starts: which process runs where, with what settings.

Two command hosts (an API and a relay each; the relays share one lease, so one publishes and
the other stands by), two query hosts (an API each) and three projectors in one consumer group,
spread over the query hosts. Every process of a host shares that host's METRICS_DIR, as the
processes of one machine would; every process shares DATA_DIR, so one dev key signs and
verifies every token.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The topic of a replicated cluster: six partitions spread three projectors two each.
CLUSTER_PARTITIONS = 6
CLUSTER_REPLICATION_FACTOR = 3
PROJECTORS = 3


@dataclass(frozen=True)
class ServiceSpec:
    """One process of the layout: its name, the console script it runs and its environment."""

    name: str
    script: str
    env: dict[str, str]
    base_url: str | None = None  # answers GET /healthz once it is up


@dataclass(frozen=True)
class ClusterLayout:
    """Ports and URLs of the cluster's processes on this machine (all on 127.0.0.1)."""

    command_api_ports: tuple[int, ...]
    query_api_ports: tuple[int, ...]
    console_port: int
    event_store_url: str
    read_model_url: str
    kafka_bootstrap_servers: str
    data_dir: Path

    @property
    def command_urls(self) -> list[str]:
        """The base URL of each command API."""
        return [f"http://127.0.0.1:{port}" for port in self.command_api_ports]

    @property
    def query_urls(self) -> list[str]:
        """The base URL of each query API."""
        return [f"http://127.0.0.1:{port}" for port in self.query_api_ports]

    @property
    def console_url(self) -> str:
        """The operator console's base URL."""
        return f"http://127.0.0.1:{self.console_port}"

    def shared_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """What every process gets: base plus the one event log, read model and cluster."""
        env = dict(base)
        env.update(
            DATA_DIR=str(self.data_dir),
            EVENT_STORE_URL=self.event_store_url,
            READ_MODEL_URL=self.read_model_url,
            KAFKA_BOOTSTRAP_SERVERS=self.kafka_bootstrap_servers,
            KAFKA_TOPIC_PARTITIONS=str(CLUSTER_PARTITIONS),
            KAFKA_REPLICATION_FACTOR=str(CLUSTER_REPLICATION_FACTOR),
        )
        # Two hosts of each API on one machine: one worker each keeps the cores for the rest.
        env.setdefault("COMMAND_API_WORKERS", "1")
        env.setdefault("QUERY_API_WORKERS", "1")
        return env

    def services(self, base: Mapping[str, str]) -> list[ServiceSpec]:
        """Every process in start order: command hosts, projectors, query hosts, console."""
        env = self.shared_env(base)
        specs: list[ServiceSpec] = []
        for host, (port, url) in enumerate(
            zip(self.command_api_ports, self.command_urls, strict=True), 1
        ):
            host_env = {**env, "METRICS_DIR": self._metrics_dir(f"command-{host}")}
            api_env = {**host_env, "COMMAND_API_HOST": "127.0.0.1", "COMMAND_API_PORT": str(port)}
            specs.append(ServiceSpec(f"command-api-{host}", "command-api", api_env, url))
            specs.append(ServiceSpec(f"command-relay-{host}", "command-relay", host_env))
        for number in range(1, PROJECTORS + 1):
            host = (number - 1) % len(self.query_api_ports) + 1
            # Gap repair reads the log from a command API; spread over both like the load.
            command_url = self.command_urls[(number - 1) % len(self.command_urls)]
            projector_env = {
                **env,
                "METRICS_DIR": self._metrics_dir(f"query-{host}"),
                "COMMAND_API_URL": command_url,
            }
            specs.append(ServiceSpec(f"query-projector-{number}", "query-projector", projector_env))
        for host, (port, url) in enumerate(
            zip(self.query_api_ports, self.query_urls, strict=True), 1
        ):
            api_env = {
                **env,
                "METRICS_DIR": self._metrics_dir(f"query-{host}"),
                "QUERY_API_HOST": "127.0.0.1",
                "QUERY_API_PORT": str(port),
                "COMMAND_API_URL": self.command_urls[(host - 1) % len(self.command_urls)],
            }
            specs.append(ServiceSpec(f"query-api-{host}", "query-api", api_env, url))
        # The console reads one API of each side (it takes one URL of each).
        console_env = {
            **env,
            "CONSOLE_HOST": "127.0.0.1",
            "CONSOLE_PORT": str(self.console_port),
            "COMMAND_API_URL": self.command_urls[0],
            "QUERY_API_URL": self.query_urls[0],
        }
        specs.append(ServiceSpec("orders-console", "orders-console", console_env, self.console_url))
        return specs

    def _metrics_dir(self, host: str) -> str:
        return str(self.data_dir / "cluster" / host / "metrics")
