"""4. Relay publish rate from a backlog (100,000 events by default) vs a raw kafka-python producer.

The log is filled with EventStore first; then `command-relay` is started on a fresh topic and
timed until its published position (relay_state, command_service/outbox/lease.py) reaches the
head. The raw producer sends the same messages (the relay's keys, values and headers, built
beforehand) with the relay's producer settings (shared.infra.kafka.create_producer: acks=all,
idempotent, linger 0, 128 KiB batches, 5 in flight) to fresh topics with the same partitions:
once sending everything then flushing (the ceiling), once waiting for each 500-event batch's
acknowledgements as the relay does. A second relay run, on another topic, is sampled by py-spy.
The log's events name an admin principal in their metadata, as events written through the
authenticated command API do, so the messages carry the CloudEvents auth context headers.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Result, base_parser, ratio, work_dir
from bench.services import Profiler, Service, Services, console_script, cpu_usage, kafka_broker
from bench.workload import fill_log
from command_service.adapters.event_store import EventStore
from command_service.outbox.message import message_headers
from shared.infra import kafka as kafka_clients
from shared.infra.config import Settings
from shared.infra.db import create_database_engine

Message = tuple[bytes, bytes, list[tuple[str, bytes]]]


def relay_messages(store: EventStore, source: str) -> list[Message]:
    """What the relay sends for every event of the log, in log order."""
    messages: list[Message] = []
    after = 0
    while page := store.read_all(after, 5000):
        for event in page:
            messages.append(
                (event.stream_id.encode(), event.to_json(), message_headers(event, source))
            )
        after = page[-1].position
    return messages


def raw_producer_run(
    settings: Settings, topic: str, messages: list[Message], batch: int | None
) -> dict[str, Any]:
    """Send with a producer configured like the relay's; batch=None: send all, then flush."""
    kafka_clients.ensure_topic(
        settings.kafka_bootstrap_servers, topic, settings.kafka_topic_partitions, 1
    )
    producer = kafka_clients.create_producer(settings, client_id="bench-raw")
    producer.partitions_for(topic)
    started = time.perf_counter()
    if batch is None:
        for key, value, headers in messages:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush()
    else:
        for start in range(0, len(messages), batch):
            futures = [
                producer.send(topic, key=key, value=value, headers=headers)
                for key, value, headers in messages[start : start + batch]
            ]
            for future in futures:
                future.get(timeout=30)
    seconds = time.perf_counter() - started
    producer.close()
    return {
        "events": len(messages),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(messages) / seconds),
    }


def published_position(db: Path, topic: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute(
                "SELECT published_position FROM relay_state WHERE topic = ?", (topic,)
            ).fetchone()
        except sqlite3.OperationalError:
            return 0  # the relay has not created its table yet
    return int(row[0]) if row else 0


def relay_run(
    services: Services,
    db: Path,
    bootstrap: str,
    topic: str,
    head: int,
    profile_to: Path | None = None,
    expected_s: float = 30,
) -> tuple[dict[str, Any], Service]:
    """Start a relay on a fresh topic and time it until published_position == head."""
    env = {
        "EVENT_STORE_URL": f"sqlite:///{db}",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "LOG_LEVEL": "INFO",
    }
    started = time.monotonic()
    relay = services.start(f"relay-{topic[-6:]}", console_script("command-relay"), env)
    profiler = Profiler(relay.pid, profile_to, expected_s + 2) if profile_to else None
    first_seen: tuple[float, int] | None = None

    def wait_done() -> float:
        nonlocal first_seen
        deadline = started + 600
        while time.monotonic() < deadline:
            position = published_position(db, topic)
            now = time.monotonic()
            if position and first_seen is None:
                first_seen = (now, position)
            if position >= head:
                return now
            if not relay.is_running:
                raise RuntimeError(f"relay exited:\n{relay.tail()}")
            time.sleep(0.02)
        raise RuntimeError(f"relay did not finish in 600 s:\n{relay.tail()}")

    done, usage = cpu_usage([relay], wait_done)
    relay.sample_memory()
    outcome: dict[str, Any] = {
        "events": head,
        "seconds_from_process_start": round(done - started, 2),
        "events_per_s_from_process_start": round(head / (done - started)),
        "relay_cores_used": usage[f"{relay.name}_cores"],
        "machine_cores_busy": usage["machine_cores_busy"],
    }
    if first_seen is not None and done > first_seen[0]:
        steady = (head - first_seen[1]) / (done - first_seen[0])
        outcome["startup_seconds"] = round(first_seen[0] - started, 2)
        outcome["events_per_s_steady"] = round(steady)
    if profiler is not None:
        outcome["profile"] = profiler.finish()
    return outcome, relay


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--events", type=int, default=None, help="backlog size (100,000)")
    args = parser.parse_args(argv)
    events = args.events or (10_000 if args.quick else 100_000)
    result = Result(
        "relay",
        {
            "backlog_events": events,
            "relay_batch_size": 500,
            "topic_partitions": 3,
            "producer": "shared.infra.kafka.create_producer",
        },
        args.quick,
    )
    with (
        work_dir("relay", args.keep) as folder,
        kafka_broker(folder) as bootstrap,
        Services(folder) as services,
    ):
        db = folder / "events.db"
        store = EventStore(create_database_engine(f"sqlite:///{db}"))
        store.create_schema()
        fill_log(store, events, "backlog")
        head = store.head_position()
        settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
        messages = relay_messages(store, settings.cloudevents_source)
        run_id = uuid.uuid4().hex[:6]

        def topic(name: str) -> str:
            return f"bench-{run_id}-{name}"

        raw_all_1 = raw_producer_run(settings, topic("raw1"), messages, None)
        print(f"  raw producer, send all + flush: {raw_all_1['events_per_s']:,} events/s")
        raw_batches = raw_producer_run(settings, topic("rawb"), messages, 500)
        print(
            f"  raw producer, 500 per batch, waiting for acks: "
            f"{raw_batches['events_per_s']:,} events/s"
        )
        relay, relay_service = relay_run(services, db, bootstrap, topic("relay1"), head)
        print(
            f"  relay: {relay.get('events_per_s_steady', 0):,} events/s steady, "
            f"{relay['events_per_s_from_process_start']:,} events/s from process start "
            f"({relay['seconds_from_process_start']} s)"
        )
        memory = relay_service.peak_memory_mib()
        relay_service.stop()
        raw_all_2 = raw_producer_run(settings, topic("raw2"), messages, None)
        print(f"  raw producer again: {raw_all_2['events_per_s']:,} events/s")
        raw_rate = (raw_all_1["events_per_s"] + raw_all_2["events_per_s"]) / 2
        relay_rate = relay.get("events_per_s_steady", relay["events_per_s_from_process_start"])
        relay_ratio = ratio(relay_rate, raw_rate)
        result.data["results"] = {
            "raw_producer_send_all": [raw_all_1, raw_all_2],
            "raw_producer_per_500_batch": raw_batches,
            "relay": relay,
            "ratio_relay_vs_raw": relay_ratio,
            "ratio_relay_from_start_vs_raw": ratio(
                relay["events_per_s_from_process_start"], raw_rate
            ),
            "ratio_relay_vs_raw_per_batch": ratio(relay_rate, raw_batches["events_per_s"]),
        }
        result.target("relay vs raw producer", relay_ratio, ">= 0.8x", relay_ratio >= 0.8)
        profiled, profiled_service = relay_run(
            services,
            db,
            bootstrap,
            topic("relay2"),
            head,
            folder / "relay.pyspy",
            expected_s=relay["seconds_from_process_start"],
        )
        profiled_service.stop()
        result.data["profiles"]["relay publishing the backlog (py-spy)"] = profiled.pop("profile")
        result.data["results"]["relay_while_profiled"] = profiled
        result.data["memory_peak_mib"] = {"command-relay": next(iter(memory.values()))}
    result.save()


if __name__ == "__main__":
    main()
