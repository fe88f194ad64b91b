"""Network faults injected by a real fault proxy (Toxiproxy, devtools/toxiproxy.py) under a
steady load: 500 ms latency, connection resets, a peer cut off and one gone silent, and a
bandwidth limit between the relay and Kafka and between the projector and Kafka; and the
projector's gap repair through a slow, then cut-off, command API. Each ends with nothing lost
and nothing counted twice.

The relay and the projector each reach the broker through a proxy of their own (the broker
advertises a listener per proxy, see ProxiedListener); the checks read the broker directly.
Where Go is missing, Toxiproxy cannot be built and every scenario skips, saying so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from kafka import KafkaConsumer

from devtools.toxiproxy import ToxiproxyServer
from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    SteadyWorkload,
    projected_events,
    published_position,
    wait_for_load,
)
from tests.support.network_faults import (
    LossyCopy,
    OnEvery,
    ProxiedKafka,
    ProxiedOrderSystem,
    accepted_connections,
    proxied_kafka,
    reset_bursts,
)
from tests.support.processes import ServiceRunner, wait_until
from tests.support.topics import fresh_topic

pytestmark = pytest.mark.kafka

CLIENTS = 8
ORDERS = 120
RATE = 15.0  # orders taken up per second: about 8 s of load, the fault in the middle of it
FAULT_S = 4.0
LATENCY_MS = 500


@pytest.fixture(scope="module")
def kafka(
    toxiproxy: ToxiproxyServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxiedKafka]:
    """A broker of its own, reached by the relay and the projector through their proxies."""
    with proxied_kafka(toxiproxy.client, tmp_path_factory.mktemp("proxied-kafka")) as broker:
        yield broker


def network_system(
    runner: ServiceRunner,
    kafka: ProxiedKafka,
    toxiproxy: ToxiproxyServer,
    topic: str,
    projector_topic: str | None = None,
) -> ProxiedOrderSystem:
    toxiproxy.client.reset()  # no toxic of an earlier scenario survives into this one
    system = ProxiedOrderSystem(runner, kafka, topic, toxiproxy.client, projector_topic).start()
    # Both through their proxies before the load, so the fault meets them at work (a
    # projector still joining its group under the fault would show nothing else).
    system.relay.wait_for_output("publishing", timeout=60)
    system.projector.wait_for_output("positioned partitions from the read model", timeout=60)
    return system


@pytest.fixture
def system(
    started: float, tmp_path: Path, kafka: ProxiedKafka, toxiproxy: ToxiproxyServer
) -> Iterator[ProxiedOrderSystem]:
    """The four processes on a fresh topic, relay and projector behind their proxies."""
    with fresh_topic(kafka.bootstrap, "net") as topic, ServiceRunner(tmp_path) as runner:
        system = network_system(runner, kafka, toxiproxy, topic)
        try:
            yield system
        finally:
            system.close()


def steady_load(system: ProxiedOrderSystem, seed: int) -> SteadyWorkload:
    return SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=seed, headers=system.admin_headers
    )


def finish(
    name: str,
    system: ProxiedOrderSystem,
    workload: SteadyWorkload,
    started: float,
    notes: str = "",
) -> None:
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    assert workload.retries == 0, "neither Kafka nor gap repair is on the command path"
    acknowledged, retries = workload.acknowledged, workload.retries
    finish_scenario(name, system, acknowledged, retries, started, notes, orders=ORDERS)


def during_fault(
    system: ProxiedOrderSystem,
    workload: SteadyWorkload,
    fault: Callable[[], AbstractContextManager[object]],
) -> tuple[int, int, int]:
    """Hold `fault` for FAULT_S under load; (acks, events published, events projected) in it."""
    wait_for_load(workload, 30)
    with fault():
        began = time.monotonic()
        published, applied = published_position(system), projected_events(system)
        time.sleep(FAULT_S)  # the fault itself, not a wait for a condition
        published = published_position(system) - published
        applied = projected_events(system) - applied
        acks = workload.acknowledged_between(began, time.monotonic())
    return acks, published, applied


def test_a_client_that_bootstraps_through_a_proxy_stays_behind_it(
    kafka: ProxiedKafka, toxiproxy: ToxiproxyServer
) -> None:
    """The premise of every scenario below: metadata hands the proxy's address back."""
    before = accepted_connections(toxiproxy, kafka.relay)
    consumer = KafkaConsumer(bootstrap_servers=kafka.relay_bootstrap, request_timeout_ms=5000)
    try:
        assert consumer.topics() is not None  # a metadata round trip
        brokers = consumer._client.cluster.brokers()
    finally:
        consumer.close()

    assert [(b.host, b.port) for b in brokers] == [("127.0.0.1", kafka.relay.listen_port)]
    assert accepted_connections(toxiproxy, kafka.relay) > before


def test_relay_to_kafka_latency(system: ProxiedOrderSystem, started: float) -> None:
    workload = steady_load(system, seed=401)
    load = workload.start(CLIENTS)
    acks, published, _ = during_fault(
        system,
        workload,
        lambda: system.kafka.relay.toxic("latency", {"latency": LATENCY_MS}),
    )
    load.join()

    assert acks > 0 and published > 0, "commands and the relay both go on, only slower"
    finish(
        f"relay<->Kafka {LATENCY_MS} ms latency",
        system,
        workload,
        started,
        f"{published} published in {FAULT_S:.0f} s of latency",
    )


def test_projector_to_kafka_latency(system: ProxiedOrderSystem, started: float) -> None:
    workload = steady_load(system, seed=402)
    load = workload.start(CLIENTS)
    _, _, applied = during_fault(
        system,
        workload,
        lambda: system.kafka.projector.toxic("latency", {"latency": LATENCY_MS}),
    )
    load.join()

    assert applied > 0, "the projector goes on, only slower"
    finish(
        f"projector<->Kafka {LATENCY_MS} ms latency",
        system,
        workload,
        started,
        f"{applied} projected in {FAULT_S:.0f} s of latency",
    )


def test_connection_resets_on_both_kafka_paths(
    system: ProxiedOrderSystem, toxiproxy: ToxiproxyServer, started: float
) -> None:
    workload = steady_load(system, seed=403)
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)
    before = {p.name: accepted_connections(toxiproxy, p) for p in system.kafka.proxies()}
    published, applied = published_position(system), projected_events(system)
    bursts = reset_bursts(system.kafka.proxies(), FAULT_S)
    published = published_position(system) - published
    applied = projected_events(system) - applied
    load.join()
    reconnects = {
        p.name: accepted_connections(toxiproxy, p) - before[p.name] for p in system.kafka.proxies()
    }

    assert all(n > 0 for n in reconnects.values()), f"clients never reconnected: {reconnects}"
    assert published > 0 and applied > 0, "between the resets both go on"
    finish(
        "Kafka connections reset (RST) 1/s",
        system,
        workload,
        started,
        f"{bursts} bursts, reconnects {sorted(reconnects.values())}; {published} published, "
        f"{applied} projected meanwhile",
    )


def test_relay_and_projector_cut_off_from_kafka_then_healed(
    system: ProxiedOrderSystem, started: float
) -> None:
    workload = steady_load(system, seed=404)
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)
    with OnEvery(system.kafka.proxies(), lambda p: p.cut_off()):
        began = time.monotonic()
        time.sleep(0.5)  # an acknowledgement already on its way when the cut came
        stuck_at = published_position(system)
        time.sleep(FAULT_S)  # the fault itself
        assert published_position(system) == stuck_at, "published without a connection"
        acks = workload.acknowledged_between(began, time.monotonic())
    backlog = len(system.event_log()) - stuck_at
    load.join()

    assert acks > 0, "commands must be acknowledged while Kafka is out of reach"
    finish(
        "relay+projector cut off from Kafka",
        system,
        workload,
        started,
        f"{acks} acked while cut off, backlog {backlog}",
    )


def test_kafka_silent_to_relay_and_projector(system: ProxiedOrderSystem, started: float) -> None:
    workload = steady_load(system, seed=405)
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)
    # A black hole: connections stay open, every byte is dropped; only timeouts notice.
    with OnEvery(system.kafka.proxies(), lambda p: p.toxic("timeout", {"timeout": 0})):
        began = time.monotonic()
        time.sleep(0.5)
        stuck_at = published_position(system)
        time.sleep(FAULT_S + 2)  # longer than the clients' 5 s request timeout
        assert published_position(system) == stuck_at, "published into a black hole"
        acks = workload.acknowledged_between(began, time.monotonic())
    load.join()

    assert acks > 0
    finish(
        "Kafka silent (timeout toxic) 6 s",
        system,
        workload,
        started,
        f"{acks} acked while silent",
    )


def test_bandwidth_limit_on_both_kafka_paths(system: ProxiedOrderSystem, started: float) -> None:
    workload = steady_load(system, seed=406)
    load = workload.start(CLIENTS)
    rate_kb = 32
    # The relay's records go upstream, the projector's fetches come back downstream.
    acks, published, applied = during_fault(
        system,
        workload,
        lambda: OnEvery(
            system.kafka.proxies(),
            lambda p: p.toxic(
                "bandwidth",
                {"rate": rate_kb},
                stream="upstream" if p is system.kafka.relay else "downstream",
            ),
        ),
    )
    load.join()

    assert acks > 0 and published > 0 and applied > 0, "all three go on under the limit"
    finish(
        f"Kafka paths limited to {rate_kb} KB/s",
        system,
        workload,
        started,
        f"{published} published, {applied} projected under the limit",
    )


def projector_log_count(system: ProxiedOrderSystem, text: str) -> int:
    return system.projector.output().count(text)


GAP = "version gap: reading the missing events from the command API"
RETRIED = "batch not applied; rewinding to retry"


def test_gap_repair_through_a_slow_then_cut_command_api(
    started: float, tmp_path: Path, kafka: ProxiedKafka, toxiproxy: ToxiproxyServer
) -> None:
    with (
        fresh_topic(kafka.bootstrap, "net") as topic,
        fresh_topic(kafka.bootstrap, "net-lossy") as lossy,
        ServiceRunner(tmp_path) as runner,
    ):
        system = network_system(runner, kafka, toxiproxy, topic, projector_topic=lossy)
        try:
            gap_repair_scenario(system, topic, lossy, started)
        finally:
            system.close()


def gap_repair_scenario(system: ProxiedOrderSystem, topic: str, lossy: str, started: float) -> None:
    workload = steady_load(system, seed=407)
    # Every third order that goes on after being placed loses its OrderPlaced on the way to
    # the projector, which then meets version 2 first and reads version 1 from the command API.
    doomed = {
        order_id for n, (order_id, _, path) in enumerate(workload.plans) if path and n % 3 == 1
    }
    copy = LossyCopy(
        system.kafka.bootstrap,
        topic,
        lossy,
        lambda event: event["type"] == "OrderPlaced" and event["stream_id"] in doomed,
    )
    with copy:
        load = workload.start(CLIENTS)
        gap_repair = system.gap_repair
        with gap_repair.toxic("latency", {"latency": LATENCY_MS}):
            wait_until(
                lambda: projector_log_count(system, GAP) >= 3,
                60,
                "no gap repaired through the slow command API",
            )
        repaired_slowly = projector_log_count(system, GAP)
        with gap_repair.cut_off():
            # Cut until a gap met meanwhile could not be repaired and its batch was retried.
            wait_until(
                lambda: projector_log_count(system, RETRIED) >= 1,
                60,
                "the projector never met a gap while the command API was cut off",
            )
        load.join()
        system.wait_converged(180)
    retried = projector_log_count(system, RETRIED)
    gaps = projector_log_count(system, GAP)

    assert len(copy.dropped) == len(doomed), "every doomed OrderPlaced was left out"
    assert "CommandApiUnavailable" in system.projector.output()
    assert gaps >= len(doomed), f"{gaps} gap repairs for {len(doomed)} gaps"
    finish(
        "gap repair via slow, then cut, API",
        system,
        workload,
        started,
        f"{len(doomed)} gaps, {repaired_slowly} repairs at +{LATENCY_MS} ms, {retried} retried "
        "while cut",
    )
