"""A three-broker KRaft Kafka cluster on 127.0.0.1 from the same Maven jars as LocalKafka.

Each node is broker and controller at once (combined mode) and every node is a voter of the
controller quorum. Defaults fit a replicated topic as production runs it: replication factor 3
and min.insync.replicas=2, so one broker may be down while acks=all writes still succeed.
Heaps are small (CLUSTER_HEAP_OPTIONS): three JVMs share a small machine with the services.
CLI: `python -m devtools.kafka_cluster run` (foreground, Ctrl-C stops it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from devtools.local_kafka import (
    REPO_ROOT,
    LocalKafka,
    LocalKafkaError,
    ProxiedListener,
    _escape_property,
    _new_cluster_id,
    _read_properties,
)
from devtools.ports import free_port
from devtools.waiting import wait_until

__all__ = ["CLUSTER_HEAP_OPTIONS", "ClusterNode", "KafkaCluster"]

log = logging.getLogger("devtools.kafka_cluster")

# Held on a 2-core, 24 GiB machine: three nodes with 256 MiB each start, elect and serve the
# 6-partition RF 3 topic of make run-cluster and tests/integration/test_kafka_cluster.py.
CLUSTER_HEAP_OPTIONS = ("-Xmx256m", "-Xms256m")
CLUSTER_SIZE = 3
MIN_INSYNC_REPLICAS = 2


class ClusterNode(LocalKafka):
    """One combined broker+controller of a KafkaCluster (node ids 1..n, one cluster id)."""

    heap_options = CLUSTER_HEAP_OPTIONS

    def __init__(
        self,
        node_id: int,
        port: int,
        controller_port: int,
        data_dir: Path,
        quorum_voters: str,
        cluster_id: str,
        replication_factor: int,
        host: str = "127.0.0.1",
        command_prefix: Sequence[str] = (),
        extra_properties: Mapping[str, str] | None = None,
        proxied_listeners: Sequence[ProxiedListener] = (),
    ) -> None:
        """Describe the node; nothing starts until start()."""
        super().__init__(
            port=port,
            data_dir=data_dir,
            controller_port=controller_port,
            host=host,
            command_prefix=command_prefix,
            proxied_listeners=proxied_listeners,
        )
        self.node_id = node_id
        self.quorum_voters = quorum_voters
        self.new_cluster_id = cluster_id
        self.replication_factor = replication_factor
        self.extra_properties = dict(extra_properties or {})

    def __repr__(self) -> str:
        return f"ClusterNode({self.node_id}, {self.bootstrap_servers!r})"

    def _write_config(self) -> None:
        """LocalKafka's properties, made a member of the cluster with replicated internals."""
        super()._write_config()
        props = _read_properties(self.properties_path)
        replicas = str(self.replication_factor)
        min_isr = str(min(MIN_INSYNC_REPLICAS, self.replication_factor))
        props.update(
            {
                "node.id": str(self.node_id),
                "controller.quorum.voters": self.quorum_voters,
                "default.replication.factor": replicas,
                "min.insync.replicas": min_isr,
                "offsets.topic.replication.factor": replicas,
                "transaction.state.log.replication.factor": replicas,
                "transaction.state.log.min.isr": min_isr,
                "share.coordinator.state.topic.replication.factor": replicas,
                "share.coordinator.state.topic.min.isr": min_isr,
                # A replica that lost data must never become leader: acks=all means something.
                "unclean.leader.election.enable": "false",
            }
        )
        props.update(self.extra_properties)
        body = "".join(f"{key}={_escape_property(value)}\n" for key, value in props.items())
        self.properties_path.write_text("# Written by kafka_cluster.py on every start.\n" + body)

    def _storage_cluster_id(self) -> str:
        return self.new_cluster_id


class KafkaCluster:
    """Three (or `size`) ClusterNodes on free ports under data_dir/node-<id>."""

    def __init__(
        self,
        data_dir: Path,
        size: int = CLUSTER_SIZE,
        ports: list[int] | None = None,
        controller_ports: list[int] | None = None,
        hosts: Sequence[str] | None = None,
        command_prefixes: Sequence[Sequence[str]] | None = None,
        properties: Mapping[str, str] | None = None,
        proxied_listeners: Sequence[Sequence[ProxiedListener]] | None = None,
    ) -> None:
        """Describe the cluster; nothing starts until start().

        hosts and command_prefixes (one per node) put each node on its own address, e.g. in a
        network namespace of devtools/netns.py; by default every node is on 127.0.0.1.
        properties are added to every node's server.properties. proxied_listeners (one list
        per node) give each node listeners advertised at a fault proxy's port.
        """
        if size < 1:
            raise ValueError("a cluster needs at least one node")
        self.data_dir = Path(data_dir).resolve()
        ports = ports if ports is not None else [free_port() for _ in range(size)]
        controller_ports = (
            controller_ports if controller_ports is not None else [free_port() for _ in ports]
        )
        if len(ports) != size or len(controller_ports) != size:
            raise ValueError(f"give {size} broker ports and {size} controller ports")
        hosts = list(hosts) if hosts is not None else ["127.0.0.1"] * size
        prefixes = list(command_prefixes) if command_prefixes is not None else [()] * size
        if len(hosts) != size or len(prefixes) != size:
            raise ValueError(f"give {size} hosts and {size} command prefixes")
        extra_listeners = list(proxied_listeners) if proxied_listeners is not None else [()] * size
        if len(extra_listeners) != size:
            raise ValueError(f"give {size} lists of proxied listeners")
        voters = ",".join(
            f"{node_id}@{host}:{port}"
            for node_id, (host, port) in enumerate(zip(hosts, controller_ports, strict=True), 1)
        )
        # Formatted storage keeps its own id; this one matters only for a fresh data_dir.
        cluster_id = self._recorded_cluster_id() or _new_cluster_id()
        self.nodes = [
            ClusterNode(
                node_id=node_id,
                port=port,
                controller_port=controller_port,
                data_dir=self.data_dir / f"node-{node_id}",
                quorum_voters=voters,
                cluster_id=cluster_id,
                replication_factor=min(size, 3),
                host=host,
                command_prefix=prefix,
                extra_properties=properties,
                proxied_listeners=listeners,
            )
            for node_id, (port, controller_port, host, prefix, listeners) in enumerate(
                zip(ports, controller_ports, hosts, prefixes, extra_listeners, strict=True), 1
            )
        ]

    def __repr__(self) -> str:
        return f"KafkaCluster({self.bootstrap_servers!r}, data_dir={str(self.data_dir)!r})"

    def _recorded_cluster_id(self) -> str | None:
        for meta in sorted(self.data_dir.glob("node-*/kraft/meta.properties")):
            cluster_id = _read_properties(meta).get("cluster.id")
            if cluster_id:
                return cluster_id
        return None

    @property
    def bootstrap_servers(self) -> str:
        """Every broker's address, comma-separated, as clients are given it."""
        return ",".join(node.bootstrap_servers for node in self.nodes)

    def node(self, node_id: int) -> ClusterNode:
        """The node with this node.id (1-based)."""
        return self.nodes[node_id - 1]

    def start(self, timeout: float = 120) -> None:
        """Start every node at once and block until each serves metadata requests.

        Together, because no node is ready before a majority of the controllers runs. If one
        fails, the others are stopped too and the first error is raised.
        """
        self._each(lambda node: node.start(timeout), on_error=self.kill)

    def stop(self, timeout: float = 30) -> None:
        """Stop every node at once (one after another, the last would wait for a quorum)."""
        self._each(lambda node: node.stop(timeout))

    def kill(self) -> None:
        """SIGKILL every node."""
        for node in self.nodes:
            node.kill()

    def is_ready(self, timeout: float = 5.0) -> bool:
        """Whether every node answers a metadata request and lists itself."""
        return all(node.is_ready(timeout) for node in self.nodes)

    def running_nodes(self) -> list[ClusterNode]:
        """The nodes whose JVM is alive."""
        return [node for node in self.nodes if node.is_running]

    def _each(
        self, action: Callable[[ClusterNode], None], on_error: Callable[[], None] | None = None
    ) -> None:
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            futures = [pool.submit(action, node) for node in self.nodes]
        errors = [exc for future in futures if (exc := future.exception()) is not None]
        if errors:
            if on_error is not None:
                on_error()
            raise errors[0]

    # -- partitions -------------------------------------------------------------------------

    @contextmanager
    def admin(
        self, client_id: str = "kafka-cluster-probe", node: ClusterNode | None = None
    ) -> Iterator[Any]:
        """A kafka-python admin client bootstrapped from the running nodes (or one node)."""
        from kafka import KafkaAdminClient  # lazy: the module must import without kafka-python

        nodes = [node] if node is not None else self.running_nodes()
        servers = [member.bootstrap_servers for member in nodes]
        if not servers:
            raise LocalKafkaError("no node of the cluster is running")
        client = KafkaAdminClient(
            bootstrap_servers=servers,
            client_id=client_id,
            request_timeout_ms=5_000,
            bootstrap_timeout_ms=5_000,
        )
        try:
            yield client
        finally:
            client.close()

    def partitions(self, topic: str) -> list[dict[str, Any]]:
        """The topic's partitions as the metadata describes them (leader, replicas, isr)."""
        with self.admin() as admin:
            topics = admin.describe_topics([topic])
        found = [t for t in topics if t.get("name") == topic and t.get("error_code") == 0]
        if not found:
            raise LocalKafkaError(f"topic {topic} is not described by the cluster: {topics}")
        partitions: list[dict[str, Any]] = found[0]["partitions"]
        return partitions

    def wait_for_topic(self, topic: str, timeout: float = 60) -> None:
        """Block until every running node's metadata has the topic with a leader per partition.

        A topic just created is known to the controller first; each broker learns of it a
        moment later, and a client asking that broker meanwhile hears "unknown topic".
        """

        def known_everywhere() -> bool:
            for node in self.running_nodes():
                try:
                    with self.admin(node=node) as admin:
                        topics = admin.describe_topics([topic])
                except Exception:  # a node still starting
                    return False
                described = [t for t in topics if t.get("name") == topic]
                if not described or described[0].get("error_code") != 0:
                    return False
                partitions = described[0].get("partitions") or []
                if not partitions or any(p["leader_id"] < 0 for p in partitions):
                    return False
            return True

        wait_until(known_everywhere, timeout, lambda: f"{topic} not known to every node", 0.2)

    def leader_counts(self, topic: str) -> dict[int, int]:
        """node id -> how many of the topic's partitions it leads (every node, 0 included)."""
        counts = Counter(p["leader_id"] for p in self.partitions(topic) if p["leader_id"] >= 0)
        return {node.node_id: counts.get(node.node_id, 0) for node in self.nodes}

    def busiest_leader(self, topic: str) -> ClusterNode:
        """The node that leads the most partitions of the topic (the lowest id on a tie)."""
        counts = self.leader_counts(topic)
        return self.node(max(sorted(counts), key=lambda node_id: counts[node_id]))

    def fully_replicated(self, topic: str) -> bool:
        """Whether every partition has a leader and all its replicas in sync."""
        return all(
            p["leader_id"] >= 0 and set(p["isr_nodes"]) == set(p["replica_nodes"])
            for p in self.partitions(topic)
        )

    def wait_fully_replicated(self, topic: str, timeout: float = 60) -> None:
        """Block until every partition of the topic has all its replicas in sync again."""

        def replicated() -> bool:
            try:
                return self.fully_replicated(topic)
            except Exception:  # a node coming back may refuse a request or two
                return False

        wait_until(replicated, timeout, lambda: f"{topic} not fully replicated", 0.5)

    def wait_until_leaders_avoid(self, topic: str, node_id: int, timeout: float = 60) -> None:
        """Block until every partition of the topic has a leader other than node_id."""

        def moved() -> bool:
            try:
                partitions = self.partitions(topic)
            except Exception:  # metadata from a node that is going away
                return False
            return all(p["leader_id"] not in (-1, node_id) for p in partitions)

        wait_until(moved, timeout, lambda: f"{topic} still has partitions led by {node_id}", 0.5)

    def restart(self, node_id: int, timeout: float = 90) -> None:
        """Start a stopped or killed node again on its storage; block until it is ready."""
        self.node(node_id).start(timeout)


# ---------------------------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m devtools.kafka_cluster run`: a cluster in the foreground."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["run"])
    parser.add_argument("--data-dir", type=Path, default=REPO_ROOT / ".data" / "kafka-cluster")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    cluster = KafkaCluster(args.data_dir)
    try:
        cluster.start()
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Kafka cluster ready on {cluster.bootstrap_servers}; Ctrl-C stops it", file=sys.stderr)
    print(cluster.bootstrap_servers)
    try:
        while not stopping.wait(0.5):
            if len(cluster.running_nodes()) < len(cluster.nodes):
                print("a node of the cluster exited by itself", file=sys.stderr)
                return 1
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
