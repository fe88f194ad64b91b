"""GET /metrics of both services with real gunicorn workers, a real relay, projector and Kafka.

Counters are checked for exact totals: with several workers (and the relay or the projector
writing beside them) every scrape must add up to what happened, whichever worker answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from command_service.adapters.event_store import EventStore
from shared.contract.envelope import EventEnvelope
from shared.contract.principal import METRICS_READ
from shared.infra.db import create_database_engine
from shared.infra.metrics_dir import process_sample_dirs, remove_dead_process_dirs
from tests.integration.query_support import produce_raw
from tests.support.auth import bearer
from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceProcess, ServiceRunner, free_port, wait_until
from tests.support.workload import Workload

Samples = dict[str, list[tuple[dict[str, str], float]]]

LINES = [{"product_id": "p-1", "quantity": 2, "unit_price": "12.50"}]
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def scraper(runner: ServiceRunner) -> dict[str, str]:
    """The Authorization header of a scraper: a token with metrics:read and nothing else."""
    return bearer(runner.workdir, sub="test-prometheus", scopes=(METRICS_READ,))


def scrape(base_url: str, headers: Mapping[str, str]) -> Samples:
    """One scrape on a fresh connection (so any worker may answer), parsed: name -> samples."""
    response = requests.get(
        f"{base_url}/metrics", timeout=10, headers={"Connection": "close", **headers}
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == PROMETHEUS_TEXT
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (0 if there are none)."""
    return sum(
        value
        for sample_labels, value in samples.get(name, [])
        if labels.items() <= sample_labels.items()
    )


def by_label(samples: Samples, name: str, label: str) -> dict[str, float]:
    """label value -> summed value, for one metric."""
    result: Counter[str] = Counter()
    for sample_labels, value in samples.get(name, []):
        result[sample_labels[label]] += value
    return dict(result)


def post(url: str, body: dict[str, Any], headers: Mapping[str, str]) -> requests.Response:
    # A new connection per command, so gunicorn spreads them over its workers.
    return requests.post(url, json=body, headers={"Connection": "close", **headers}, timeout=10)


def place(base_url: str, headers: Mapping[str, str]) -> requests.Response:
    return post(f"{base_url}/orders", {"customer_id": "c-1", "lines": LINES}, headers)


def log_events(event_store_url: str) -> list[EventEnvelope]:
    engine = create_database_engine(event_store_url)
    try:
        return EventStore(engine).read_all(0, 100_000)
    finally:
        engine.dispose()


def assert_json_lines(service: ServiceProcess) -> int:
    """Every line the service wrote is one JSON object (the runner's own banners aside)."""
    lines = [line for line in service.output().splitlines() if not line.startswith("----- ")]
    for line in lines:
        try:
            assert isinstance(json.loads(line), dict), line
        except json.JSONDecodeError:
            pytest.fail(f"{service.name} wrote a line that is not JSON: {line!r}")
    return len(lines)


# --- the command API with several workers -------------------------------------------------


def test_command_metrics_add_up_exactly_across_gunicorn_workers(services: ServiceRunner) -> None:
    api = services.command_api(COMMAND_API_WORKERS="2")
    url = api.base_url
    wait_for_workers(url, services.workdir / "metrics" / "command", 2)
    admin, prometheus = services.admin_headers, scraper(services)
    account = post(f"{url}/accounts", {"customer_id": "c-1", "initial_deposit": "10000.00"}, admin)
    assert account.status_code == 201

    with ThreadPoolExecutor(8) as pool:
        placed = list(pool.map(lambda _: place(url, admin), range(24)))
    assert {r.status_code for r in placed} == {201}
    order_ids = [r.json()["order_id"] for r in placed]
    # One after another: concurrent payments from one account would clash (409).
    paid = [post(f"{url}/orders/{oid}/status", {"status": "PAID"}, admin) for oid in order_ids[:12]]
    assert {r.status_code for r in paid} == {200}
    cancelled = [
        requests.delete(f"{url}/orders/{oid}", headers={"Connection": "close", **admin}, timeout=10)
        for oid in order_ids[12:16]
    ]
    assert {r.status_code for r in cancelled} == {200}
    invalid = [post(f"{url}/orders", {"customer_id": "c-1", "lines": []}, admin) for _ in range(3)]
    assert {r.status_code for r in invalid} == {422}
    conflict = post(f"{url}/orders/{order_ids[0]}/status", {"status": "DELIVERED"}, admin)
    assert conflict.status_code == 409
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    body = {"customer_id": "c-2", "lines": LINES}
    first, again = (post(f"{url}/orders", body, {**admin, **key}) for _ in range(2))
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers.get("Idempotent-Replayed") == "true"
    # Reads are not commands, and neither is a write to no route.
    assert (
        requests.get(f"{url}/orders/{order_ids[0]}", headers=admin, timeout=10).status_code == 200
    )
    assert post(f"{url}/nowhere", {}, admin).status_code == 404
    commands = 1 + 24 + 12 + 4 + 3 + 1 + 2
    events = log_events(services.event_store_url)
    assert len(events) == 1 + 1 + 24 + 12 * 2 + 4 + 1  # paying also debits the account

    for _ in range(8):  # fresh connections: whichever worker answers, the same totals
        samples = scrape(url, prometheus)
        assert total(samples, "commands_total") == commands
        assert by_label(samples, "commands_total", "outcome") == {
            "ok": 1 + 24 + 12 + 4 + 1,
            "replayed": 1,
            "rejected": 3 + 1,
        }
        assert by_label(samples, "commands_total", "command") == {
            "place_order": 24 + 3 + 2,
            "change_status": 12 + 1,
            "cancel_order": 4,
            "open_account": 1,
        }
        assert total(samples, "commands_total", outcome="rejected", status="409") == 1
        assert total(samples, "command_duration_seconds_count") == commands
        assert total(samples, "command_duration_seconds_bucket", le="+Inf") == commands
        assert by_label(samples, "events_appended_total", "type") == dict(
            Counter(e.type for e in events)
        )
        assert total(samples, "event_log_head_position") == events[-1].position
        # Every append went through a group-commit batch of at least one.
        batches = total(samples, "event_store_append_batch_size_count")
        assert 1 <= batches <= total(samples, "event_store_append_batch_size_sum") <= commands
        # No relay ran: the whole log is lag for the topic this API is configured with.
        assert by_label(samples, "relay_lag_events", "topic") == {"orders.events": len(events)}
        assert "metrics" not in str(samples.get("http_requests_total"))
        assert total(samples, "http_requests_total", endpoint="unmatched", status="404") == 1
        assert total(samples, "http_requests_total", endpoint="orders.get_order") == 1

    # The commands really were served by both workers: each wrote its own sample file.
    per_worker = commands_per_process(services.workdir / "metrics" / "command")
    assert len([n for n in per_worker.values() if n > 0]) == 2, per_worker
    assert sum(per_worker.values()) == commands
    assert_json_lines(api)


def wait_for_workers(url: str, side_root: Path, workers: int) -> None:
    """Until `workers` processes have served a request (each then has its own sample file).

    /healthz answers as soon as one worker is up; on a loaded machine the other may still be
    booting when the commands go out, and would then serve none of them.
    """

    def all_serving() -> bool:
        requests.get(f"{url}/healthz", headers={"Connection": "close"}, timeout=10)
        return len(list(side_root.glob("*/counter_*.db"))) >= workers

    wait_until(all_serving, 60, f"fewer than {workers} workers ever answered")


def commands_per_process(side_root: Path) -> dict[str, float]:
    """commands_total summed per sample file (one file per process that counted)."""
    result = {}
    for path in side_root.glob("*/counter_*.db"):
        for metric in MultiProcessCollector.merge([str(path)]):
            if metric.name == "commands":
                result[path.name] = sum(s.value for s in metric.samples)
    return result


def test_a_restarted_command_api_starts_from_zero_and_keeps_a_live_relays_samples(
    services: ServiceRunner,
) -> None:
    api = services.command_api(COMMAND_API_WORKERS="2")
    admin, prometheus = services.admin_headers, scraper(services)
    # A relay that cannot reach any broker: it counts its failed attempts.
    topic = f"t-{uuid.uuid4().hex[:8]}"
    relay = services.relay(f"127.0.0.1:{free_port()}", topic)
    for _ in range(3):
        assert place(api.base_url, admin).status_code == 201
    wait_until(
        lambda: total(scrape(api.base_url, prometheus), "relay_publish_errors_total") >= 1,
        60,
        lambda: f"no publish error counted:\n{relay.tail()}",
    )
    side_root = services.workdir / "metrics" / "command"
    before = {p.name for p in side_root.iterdir() if p.is_dir()}
    assert {name.split("-")[0] for name in before} == {"api", "relay"}

    api.stop()
    api.start()
    api.wait_healthy()

    after = {p.name for p in side_root.iterdir() if p.is_dir()}
    relay_dirs = {name for name in before if name.startswith("relay-")}
    assert relay_dirs <= after, "a live relay's samples were removed"
    assert len(after - before) == 1 and len(before - after) == 1, (before, after)
    samples = scrape(api.base_url, prometheus)
    assert total(samples, "commands_total") == 0
    assert total(samples, "relay_publish_errors_total") >= 1
    assert total(samples, "relay_lag_events", topic=topic) == 3
    assert_json_lines(api)
    assert_json_lines(relay)


def test_sample_dirs_are_removed_when_their_lock_is_free_whatever_their_pid(
    tmp_path: Path,
) -> None:
    side_root = tmp_path / "command"
    # A live pid (ours) whose lock nobody holds: a dead process that had this pid.
    reused = side_root / f"api-{os.getpid()}"
    # A live owner, holding its lock from another process.
    live = side_root / "relay-1"
    # Debris without any lock file.
    orphan = side_root / "projector-2"
    for directory in (reused, live, orphan):
        directory.mkdir(parents=True)
        (directory / "counter_1.db").write_bytes(b"")
    reused.with_name(reused.name + ".lock").touch()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time; f = open(sys.argv[1], 'ab'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(live.with_name(live.name + ".lock")),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        removed = remove_dead_process_dirs(side_root)
    finally:
        holder.kill()
        holder.wait()

    assert sorted(removed) == sorted([reused.name, orphan.name])
    assert [p.name for p in process_sample_dirs(side_root)] == [live.name]
    # Once its owner is gone, the next start removes it too.
    assert remove_dead_process_dirs(side_root) == [live.name]
    assert process_sample_dirs(side_root) == []


# --- the relay's lag ------------------------------------------------------------------------


def test_relay_lag_grows_while_the_relay_is_down_and_returns_to_zero(
    services: ServiceRunner, kafka_bootstrap: str, kafka_topic: str
) -> None:
    api = services.command_api(COMMAND_API_WORKERS="2")
    admin, prometheus = services.admin_headers, scraper(services)
    relay = services.relay(kafka_bootstrap, kafka_topic, RELAY_LEASE_SECONDS="2")
    for _ in range(5):
        assert place(api.base_url, admin).status_code == 201

    def caught_up(published: int) -> bool:
        samples = scrape(api.base_url, prometheus)
        return (
            total(samples, "relay_lag_events", topic=kafka_topic) == 0
            and total(samples, "relay_published_events_total") == published
        )

    wait_until(
        lambda: caught_up(5), 60, lambda: f"never caught up: {scrape(api.base_url, prometheus)}"
    )
    samples = scrape(api.base_url, prometheus)
    assert total(samples, "relay_published_position", topic=kafka_topic) == 5
    assert total(samples, "relay_batch_duration_seconds_count") >= 1

    relay.kill()
    for _ in range(4):
        assert place(api.base_url, admin).status_code == 201
    samples = scrape(api.base_url, prometheus)
    assert total(samples, "relay_lag_events", topic=kafka_topic) == 4
    assert total(samples, "event_log_head_position") == 9
    # The dead relay's counts stay visible until another process of this side starts.
    assert total(samples, "relay_published_events_total") == 5

    relay.start()
    # The new relay removed its dead predecessor's samples: it counts what it published itself.
    wait_until(lambda: caught_up(4), 60, lambda: f"relay never caught up:\n{relay.tail()}")
    assert_json_lines(relay)


# --- the query side ---------------------------------------------------------------------


@pytest.fixture
def system(tmp_path: Path, kafka_bootstrap: str, kafka_topic: str) -> Iterator[OrderSystem]:
    runner = ServiceRunner(tmp_path)
    try:
        yield OrderSystem(runner, kafka_bootstrap, kafka_topic).start()
    finally:
        runner.stop_all()
        runner.print_tails()


def test_query_metrics_match_the_log_and_count_parked_and_duplicate_messages(
    system: OrderSystem,
) -> None:
    workload = Workload(
        lambda: system.command_api.base_url, orders=30, headers=system.admin_headers
    )
    workload.run(threads=4)
    system.wait_converged()
    log = system.event_log()
    query = system.query_api.base_url
    prometheus = scraper(system.runner)

    def projected_everything() -> Samples | None:
        samples = scrape(query, prometheus)
        done = total(samples, "projector_events_applied_total") == len(log)
        return samples if done and total(samples, "projector_total_lag_events") == 0 else None

    samples = wait_until(projected_everything, 30, lambda: str(scrape(query, prometheus)))
    assert by_label(samples, "projector_events_applied_total", "type") == dict(
        Counter(e.type for e in log)
    )
    assert total(samples, "kafka_up") == 1
    assert set(by_label(samples, "projector_lag_events", "partition").values()) == {0}
    assert len(by_label(samples, "projector_lag_events", "partition")) == 3
    assert total(samples, "projector_events_parked_total") == 0
    assert total(samples, "read_model_parked_events") == 0
    assert total(samples, "projector_batch_apply_seconds_count") >= 1

    # A message that is not an event is parked; an event sent again is a duplicate.
    produce_raw(
        system.bootstrap,
        system.topic,
        [
            (b"junk-1", b"\xff not an event", []),
            (log[0].stream_id.encode(), log[0].to_json(), []),
        ],
    )

    def parked_and_skipped() -> Samples | None:
        samples = scrape(query, prometheus)
        counted = (
            total(samples, "projector_events_parked_total") == 1
            and total(samples, "projector_events_duplicate_total") >= 1
        )
        return samples if counted and total(samples, "projector_total_lag_events") == 0 else None

    samples = wait_until(parked_and_skipped, 30, lambda: str(scrape(query, prometheus)))
    assert total(samples, "read_model_parked_events") == 1
    assert total(samples, "projector_events_applied_total") == len(log)

    # The query API's own traffic, by route, not counting the scrapes.
    order_id = next(e.stream_id for e in log if e.type == "OrderPlaced")
    read = requests.get(f"{query}/orders/{order_id}", headers=system.admin_headers, timeout=10)
    assert read.status_code == 200
    samples = scrape(query, prometheus)
    assert total(samples, "http_requests_total", endpoint="queries.get_order", status="200") >= 1
    assert "metrics" not in str(samples.get("http_requests_total"))

    system.runner.stop_all()
    for service in (system.command_api, system.relay, system.query_api, system.projector):
        assert assert_json_lines(service) > 0


def test_query_metrics_say_kafka_is_down_instead_of_making_up_a_lag(tmp_path: Path) -> None:
    runner = ServiceRunner(tmp_path)
    try:
        query = runner.start_http(
            "query-api",
            "query-api",
            "query_service.server",
            "QUERY_API_HOST",
            "QUERY_API_PORT",
            KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
            # One worker: each remembers its own last failed read.
            QUERY_API_WORKERS="1",
        )
        prometheus = scraper(runner)
        for _ in range(2):
            started = time.monotonic()
            samples = scrape(query.base_url, prometheus)
            took = time.monotonic() - started
            assert total(samples, "kafka_up") == 0
            assert "projector_lag_events" not in samples
            assert "projector_total_lag_events" not in samples
            assert total(samples, "read_model_parked_events") == 0
        # Right after a failed read the broker is not waited for again.
        assert took < 0.5
    finally:
        runner.stop_all()
        runner.print_tails()
