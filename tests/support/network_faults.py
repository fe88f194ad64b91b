"""Network faults for tests/faults: a broker the relay and the projector each reach through a
Toxiproxy proxy of their own, the system wired through those proxies (and its projector's gap
repair through one in front of the command API), and a lossy copy of the topic that makes the
projector repair gaps.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from devtools.kafka_cluster import CLUSTER_SIZE, KafkaCluster
from devtools.local_kafka import LocalKafka, ProxiedListener
from devtools.ports import free_port
from devtools.toxiproxy import Proxy, ToxiproxyClient, ToxiproxyServer
from tests.support.cluster_system import running_with_topic
from tests.support.faults import PROJECTOR_ARGS
from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceRunner


@dataclass
class ProxiedKafka:
    """A broker with a listener per client kind, each behind its own proxy.

    The checks (topic read-back, admin) use the broker's own listener, never a proxy.
    """

    broker: LocalKafka
    relay: Proxy  # relay -> broker
    projector: Proxy  # projector -> broker

    @property
    def bootstrap(self) -> str:
        """The broker's own listener, around every proxy."""
        return self.broker.bootstrap_servers

    @property
    def relay_bootstrap(self) -> str:
        return f"127.0.0.1:{self.relay.listen_port}"

    @property
    def projector_bootstrap(self) -> str:
        return f"127.0.0.1:{self.projector.listen_port}"

    def proxies(self) -> tuple[Proxy, Proxy]:
        return self.relay, self.projector


@contextlib.contextmanager
def proxied_kafka(toxiproxy: ToxiproxyClient, data_dir: Path) -> Iterator[ProxiedKafka]:
    """Start a broker whose RELAY and PROJECTOR listeners are advertised at two proxies' ports."""
    paths = {}
    listeners = []
    for name in ("relay", "projector"):
        listener = ProxiedListener(name.upper(), port=free_port(), advertised_port=free_port())
        listeners.append(listener)
        paths[name] = toxiproxy.create_proxy(
            f"{name}-kafka-{uuid.uuid4().hex[:6]}",
            upstream=f"127.0.0.1:{listener.port}",
            listen=f"127.0.0.1:{listener.advertised_port}",
        )
    broker = LocalKafka(port=free_port(), data_dir=data_dir, proxied_listeners=listeners)
    broker.start()
    try:
        yield ProxiedKafka(broker, paths["relay"], paths["projector"])
    finally:
        broker.stop()
        for proxy in paths.values():
            with contextlib.suppress(Exception):
                proxy.delete()


@dataclass
class ProxiedCluster:
    """A KafkaCluster whose every node has a RELAY and a PROJECTOR listener, each behind a
    proxy of its own; the checks use the nodes' own listeners."""

    cluster: KafkaCluster
    relay: list[Proxy]  # relay -> node 1, 2, 3
    projector: list[Proxy]  # projectors -> node 1, 2, 3

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap_servers

    @property
    def relay_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{proxy.listen_port}" for proxy in self.relay)

    @property
    def projector_bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{proxy.listen_port}" for proxy in self.projector)

    def proxies(self) -> list[Proxy]:
        return [*self.relay, *self.projector]


@contextlib.contextmanager
def proxied_cluster(
    toxiproxy: ToxiproxyClient, data_dir: Path, topic: str
) -> Iterator[ProxiedCluster]:
    """Start a three-node cluster with `topic` as make run-cluster makes it, each node's RELAY
    and PROJECTOR listeners advertised at their proxies' ports."""
    paths: dict[str, list[Proxy]] = {"relay": [], "projector": []}
    per_node: list[list[ProxiedListener]] = []
    suffix = uuid.uuid4().hex[:6]
    for node in range(1, CLUSTER_SIZE + 1):
        listeners = []
        for name in paths:
            listener = ProxiedListener(name.upper(), port=free_port(), advertised_port=free_port())
            listeners.append(listener)
            paths[name].append(
                toxiproxy.create_proxy(
                    f"{name}-node{node}-{suffix}",
                    upstream=f"127.0.0.1:{listener.port}",
                    listen=f"127.0.0.1:{listener.advertised_port}",
                )
            )
        per_node.append(listeners)
    try:
        with running_with_topic(KafkaCluster(data_dir, proxied_listeners=per_node), topic) as kafka:
            yield ProxiedCluster(kafka, paths["relay"], paths["projector"])
    finally:
        for proxy in [*paths["relay"], *paths["projector"]]:
            with contextlib.suppress(Exception):
                proxy.delete()


class OnEvery(AbstractContextManager[object]):
    """One toxic, or a cut, on every one of these proxies at once (removed again after)."""

    def __init__(
        self, proxies: Iterable[Proxy], on_one: Callable[[Proxy], AbstractContextManager[object]]
    ):
        self.faults = [on_one(proxy) for proxy in proxies]

    def __enter__(self) -> object:
        for fault in self.faults:
            fault.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        for fault in reversed(self.faults):
            fault.__exit__(None, None, None)


def reset_bursts(proxies: Iterable[Proxy], seconds: float) -> int:
    """For `seconds`, once a second reset (RST) every connection on these proxies that carries
    a byte in a 0.2 s burst; between bursts clients reconnect. Returns the bursts made."""
    paths = list(proxies)
    deadline = time.monotonic() + seconds
    bursts = 0
    while time.monotonic() < deadline:
        with OnEvery(paths, lambda p: p.toxic("reset_peer", {"timeout": 0})):
            time.sleep(0.2)
        bursts += 1
        time.sleep(0.8)
    return bursts


def accepted_connections(server: ToxiproxyServer, proxy: Proxy) -> int:
    """How many client connections the proxy has accepted so far (from the server's log)."""
    pattern = re.compile(r'"name":"' + re.escape(proxy.name) + r'".*"Accepted client"')
    return sum(1 for line in server.output().splitlines() if pattern.search(line))


class ProxiedOrderSystem(OrderSystem):
    """The system with its relay and projector reaching Kafka through their proxies and the
    projector's gap repair (COMMAND_API_URL) reaching the command API through a third one."""

    def __init__(
        self,
        runner: ServiceRunner,
        kafka: ProxiedKafka,
        topic: str,
        toxiproxy: ToxiproxyClient,
        projector_topic: str | None = None,
    ) -> None:
        super().__init__(runner, kafka.bootstrap, topic, PROJECTOR_ARGS)
        self.kafka = kafka
        self.relay_bootstrap = kafka.relay_bootstrap
        self.toxiproxy = toxiproxy
        # The topic the projector reads: the relay's, or a lossy copy of it.
        self.projector_topic = projector_topic or topic
        self._gap_repair: Proxy | None = None

    @property
    def gap_repair(self) -> Proxy:
        """The proxy in front of the command API for the projector's gap repair (made once the
        command API has its port)."""
        if self._gap_repair is None:
            self._gap_repair = self.toxiproxy.create_proxy(
                f"gap-repair-{self.group_id}", upstream=f"127.0.0.1:{self.command_api.port}"
            )
        return self._gap_repair

    def query_env(self) -> dict[str, str]:
        return super().query_env() | {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.projector_bootstrap,
            "KAFKA_TOPIC": self.projector_topic,
            "COMMAND_API_URL": f"http://127.0.0.1:{self.gap_repair.listen_port}",
        }

    def close(self) -> None:
        """Remove the gap-repair proxy."""
        if self._gap_repair is not None:
            with contextlib.suppress(Exception):
                self._gap_repair.delete()
            self._gap_repair = None


class LossyCopy:
    """Copies a topic into another in each partition's order, leaving out the messages `drop`
    picks: a projector reading the copy meets version gaps and must repair them from the
    command API, as after messages lost on the way.
    """

    def __init__(
        self, bootstrap: str, source: str, target: str, drop: Callable[[dict[str, Any]], bool]
    ) -> None:
        self.bootstrap = bootstrap
        self.source = source
        self.target = target
        self.drop = drop
        self.copied = 0
        self.dropped: list[tuple[str, int]] = []  # (stream id, version) of each left out
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lossy-copy", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> LossyCopy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(30)
        if self._error is not None:
            raise AssertionError(f"the lossy copy failed: {self._error!r}") from self._error

    def _run(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False
        )
        producer = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=5)
        try:
            partitions = [
                TopicPartition(self.source, p)
                for p in sorted(consumer.partitions_for_topic(self.source) or ())
            ]
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            while not self._stop.is_set():
                for tp, records in consumer.poll(timeout_ms=200, max_records=500).items():
                    for record in records:
                        self._forward(producer, tp.partition, record)
                producer.flush(30)
        except BaseException as exc:  # reported in __exit__, not lost in a thread
            self._error = exc
        finally:
            producer.close(5)
            consumer.close()

    def _forward(self, producer: Any, partition: int, record: Any) -> None:
        event = json.loads(record.value)
        if self.drop(event):
            self.dropped.append((event["stream_id"], event["version"]))
            return
        producer.send(
            self.target,
            value=record.value,
            key=record.key,
            headers=list(record.headers or []),
            partition=partition,  # the same partition keeps each stream's order
        )
        self.copied += 1
