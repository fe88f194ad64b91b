"""5. Projector apply rate and full rebuild rate (1,000,000 events by default), and the read
model's size on disk.

Setup (not timed): the log is filled with EventStore and published to a fresh topic with the
relay's producer settings and message format. Then, one after the other:

- projector: `query-projector` on a fresh read model and consumer group, timed until the
  stored positions (projector_positions) cover the topic's end offsets;
- rebuild over HTTP: `query-rebuild --no-kafka` (default page size) reading the command API's
  GET /events feed (`command-api` on the same log) into a fresh read model;
- rebuild in-process (extra number): query_service.rebuild.rebuild_read_model with a source
  that reads EventStore.read_all directly: no HTTP, no JSON encoding and parsing in between
  (on the first 200,000 events at most, see --direct-events).

py-spy samples the projector, the rebuild and the command API at 50 Hz during the timed runs.

Authentication is on: every process runs AUTH_MODE=dev on the work folder, so the command API
verifies the service tokens (events:read) that the projector and the rebuild mint with the
dev key there, as `make run` wires them. The log's events carry an admin principal in their
metadata, as events written through the command API do (bench/auth.py).
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Result, base_parser, file_size_mib, ratio, sqlite_files, work_dir
from bench.services import (
    Profiler,
    Service,
    Services,
    console_script,
    cpu_usage,
    kafka_broker,
)
from bench.workload import fill_log
from command_service.adapters.event_store import EventStore
from command_service.outbox.message import send_event
from devtools.ports import free_port
from query_service.projection.accounts import project_account
from query_service.projection.events import OrderEventBase
from query_service.projection.orders import project
from query_service.projection.parsing import parse_raw
from query_service.projector.command_api import EventsPage
from query_service.projector.consumer import ProjectorOptions
from query_service.read_model.tables import create_read_model_engine
from query_service.rebuild import DEFAULT_PAGE_SIZE, FLUSH_EVERY_EVENTS, rebuild_read_model
from shared.infra import kafka as kafka_clients
from shared.infra.config import Settings
from shared.infra.db import create_database_engine

PROFILE_HZ = 50


def publish_log(store: EventStore, settings: Settings, topic: str) -> int:
    """Publish the whole log as the relay would (same keys, values, headers); the count."""
    kafka_clients.ensure_topic(
        settings.kafka_bootstrap_servers, topic, settings.kafka_topic_partitions, 1
    )
    producer = kafka_clients.create_producer(settings, client_id="bench-setup", linger_ms=20)
    source = settings.cloudevents_source
    sent = after = 0
    started = time.monotonic()
    while page := store.read_all(after, 5000):
        for event in page:
            send_event(producer, topic, event, source)
        sent += len(page)
        after = page[-1].position
        if sent % 100_000 < 5000:
            print(f"  published {sent:,} ({sent / (time.monotonic() - started):,.0f}/s)")
    producer.flush()
    producer.close()
    print(f"  published {sent:,} events in {time.monotonic() - started:.0f}s")
    return sent


def consumed(read_model: Path, topic: str) -> int:
    """Messages the projector has committed with the read model (sum of next offsets)."""
    if not read_model.exists():
        return 0
    with sqlite3.connect(f"file:{read_model}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute(
                "SELECT coalesce(sum(next_offset), 0) FROM projector_positions WHERE topic = ?",
                (topic,),
            ).fetchone()
        except sqlite3.OperationalError:
            return 0
    return int(row[0])


def projector_run(
    services: Services, folder: Path, bootstrap: str, topic: str, total: int, command_url: str
) -> tuple[dict[str, Any], Service]:
    read_model = folder / "read_model_projector.db"
    env = {
        "DATA_DIR": str(folder),  # its service token is signed with the command API's dev key
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_GROUP_ID": f"bench-{uuid.uuid4().hex[:8]}",
        "READ_MODEL_URL": f"sqlite:///{read_model}",
        "COMMAND_API_URL": command_url,
        "LOG_LEVEL": "INFO",
    }
    started = time.monotonic()
    projector = services.start("query-projector", console_script("query-projector"), env)
    profiler = Profiler(projector.pid, folder / "projector.pyspy", 3600, PROFILE_HZ)
    first: tuple[float, int] | None = None

    def wait_done() -> float:
        nonlocal first
        while True:
            done = consumed(read_model, topic)
            now = time.monotonic()
            if done and first is None:
                first = (now, done)
            if done >= total:
                return now
            if not projector.is_running:
                raise RuntimeError(f"projector exited:\n{projector.tail()}")
            projector.sample_memory()
            time.sleep(0.25)

    finished, usage = cpu_usage([projector], wait_done)
    projector.sample_memory()
    profiler.interrupt()
    outcome: dict[str, Any] = {
        "events": total,
        "seconds_from_process_start": round(finished - started, 1),
        "events_per_s_from_process_start": round(total / (finished - started)),
        "projector_cores_used": usage["query-projector_cores"],
        "machine_cores_busy": usage["machine_cores_busy"],
        "read_model_mib": file_size_mib(*sqlite_files(read_model)),
    }
    if first is not None and finished > first[0]:
        outcome["startup_seconds"] = round(first[0] - started, 1)
        outcome["events_per_s_steady"] = round((total - first[1]) / (finished - first[0]))
    outcome["profile"] = profiler.finish()
    return outcome, projector


def rebuild_over_http(
    services: Services, folder: Path, command_url: str, command_api: Service, total: int
) -> tuple[dict[str, Any], Service]:
    read_model = folder / "read_model_rebuild.db"
    env = {
        "DATA_DIR": str(folder),  # its service token is signed with the command API's dev key
        "READ_MODEL_URL": f"sqlite:///{read_model}",
        "COMMAND_API_URL": command_url,
        "LOG_LEVEL": "INFO",
    }
    api_profiler = Profiler(command_api.pid, folder / "command-api.pyspy", 3600, PROFILE_HZ)
    started = time.monotonic()
    rebuild = services.start("query-rebuild", [*console_script("query-rebuild"), "--no-kafka"], env)
    profiler = Profiler(rebuild.pid, folder / "rebuild.pyspy", 3600, PROFILE_HZ)

    rebuild_cpu = [0.0]

    def wait_exit() -> float:
        while rebuild.is_running:
            rebuild.sample_memory()
            rebuild_cpu[0] = max(rebuild_cpu[0], rebuild.cpu_seconds())
            time.sleep(0.2)
        return time.monotonic()

    finished, usage = cpu_usage([command_api], wait_exit)
    api_profiler.interrupt()
    if rebuild.proc is None or rebuild.proc.returncode != 0:
        raise RuntimeError(f"query-rebuild failed:\n{rebuild.tail()}")
    seconds = finished - started
    outcome = {
        "events": total,
        "seconds": round(seconds, 1),
        "events_per_s": round(total / seconds),
        "rebuild_cores_used": round(rebuild_cpu[0] / seconds, 2),
        "command_api_cores_used": usage["command-api_cores"],
        "machine_cores_busy": usage["machine_cores_busy"],
        "read_model_mib": file_size_mib(*sqlite_files(read_model)),
        "rebuild_output": rebuild.tail(2),
        "profile_rebuild": profiler.finish(),
        "profile_command_api": api_profiler.finish(),
    }
    return outcome, rebuild


class DirectSource:
    """The rebuild's event source without HTTP: pages of EventStore.read_all as dicts, up to
    `until` (a prefix of the log keeps this extra number affordable on a million events)."""

    def __init__(self, store: EventStore, until: int) -> None:
        self.store = store
        self.until = until

    def events_page(self, after: int, limit: int) -> EventsPage:
        events = self.store.read_all(after, min(limit, self.until - after))
        next_after = events[-1].position if events else after
        return EventsPage([e.to_dict() for e in events], next_after, next_after < self.until)


def rebuild_in_process(folder: Path, store: EventStore, events: int) -> dict[str, Any]:
    read_model = folder / "read_model_direct.db"
    engine = create_read_model_engine(f"sqlite:///{read_model}")
    started = time.monotonic()
    report = rebuild_read_model(engine, DirectSource(store, events), "unused", None, 500)
    seconds = time.monotonic() - started
    engine.dispose()
    return {
        "events": report.events,
        "applied": report.applied,
        "parked": report.parked,
        "seconds": round(seconds, 1),
        "events_per_s": round(report.events / seconds),
        "read_model_mib": file_size_mib(*sqlite_files(read_model)),
    }


def projection_floor(store: EventStore, events: int) -> dict[str, Any]:
    """Our pure projection code alone, no database: parse each feed dict (parse_raw) and compute
    its row changes (project / project_account) against rows kept in dicts. What is left of
    the rebuild's time once per-event SQL is gone; the feed is read before the clock starts."""
    raw: list[dict[str, Any]] = []
    source = DirectSource(store, events)
    after = 0
    while True:
        page = source.events_page(after, 1000)
        raw += page.events
        after = page.next_after
        if not page.has_more or not page.events:
            break
    orders: dict[str, Any] = {}
    accounts: dict[str, Any] = {}
    started = time.perf_counter()
    for item in raw:
        event = parse_raw(item)
        if isinstance(event, OrderEventBase):
            changes = project(orders.get(event.order_id), event)
            orders[event.order_id] = changes.order
        else:
            account_changes = project_account(accounts.get(event.customer_id), event)
            accounts[event.customer_id] = account_changes.account
    seconds = time.perf_counter() - started
    return {
        "events": len(raw),
        "seconds": round(seconds, 2),
        "events_per_s": round(len(raw) / seconds),
    }


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--events", type=int, default=None, help="log size (1,000,000)")
    parser.add_argument(
        "--direct-events",
        type=int,
        default=200_000,
        help="events the in-process rebuild reads (a prefix of the log)",
    )
    args = parser.parse_args(argv)
    events = args.events or (20_000 if args.quick else 1_000_000)
    result = Result(
        "projector",
        {
            "events": events,
            "projector_max_batch": ProjectorOptions.max_batch,
            "rebuild_page_size": DEFAULT_PAGE_SIZE,
            "rebuild_flush_every_events": FLUSH_EVERY_EVENTS,
            "topic_partitions": 3,
            "in_process_rebuild_events": min(events, args.direct_events),
            "py_spy_hz_during_timed_runs": PROFILE_HZ,
        },
        args.quick,
    )
    with (
        work_dir("projector", args.keep) as folder,
        kafka_broker(folder) as bootstrap,
        Services(folder) as services,
    ):
        db = folder / "events.db"
        store = EventStore(create_database_engine(f"sqlite:///{db}"))
        store.create_schema()
        fill_log(store, events, "log")
        total = store.head_position()
        settings = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": bootstrap})
        topic = f"bench-projector-{uuid.uuid4().hex[:6]}"
        publish_log(store, settings, topic)
        port = free_port()
        command_api = services.start(
            "command-api",
            console_script("command-api"),
            {
                "EVENT_STORE_URL": f"sqlite:///{db}",
                "DATA_DIR": str(folder),
                "COMMAND_API_PORT": str(port),
                "LOG_LEVEL": "INFO",
            },
        )
        command_url = f"http://127.0.0.1:{port}"
        command_api.wait_http(f"{command_url}/healthz")

        projected, projector = projector_run(services, folder, bootstrap, topic, total, command_url)
        memory = projector.peak_memory_mib()
        projector.stop()
        result.data["profiles"]["projector (py-spy)"] = projected.pop("profile")
        print(
            f"  projector: {projected.get('events_per_s_steady', 0):,} events/s steady, "
            f"{projected['events_per_s_from_process_start']:,}/s from start; read model "
            f"{projected['read_model_mib']} MiB"
        )

        rebuilt, rebuild = rebuild_over_http(services, folder, command_url, command_api, total)
        memory.update(rebuild.peak_memory_mib())
        memory.update(command_api.peak_memory_mib())
        result.data["profiles"]["query-rebuild over HTTP (py-spy)"] = rebuilt.pop("profile_rebuild")
        result.data["profiles"]["command-api serving GET /events (py-spy)"] = rebuilt.pop(
            "profile_command_api"
        )
        print(
            f"  rebuild over HTTP: {rebuilt['events_per_s']:,} events/s "
            f"({rebuilt['seconds']} s); read model {rebuilt['read_model_mib']} MiB"
        )
        command_api.stop()

        direct = rebuild_in_process(folder, store, min(total, args.direct_events))
        print(
            f"  rebuild in-process (first {direct['events']:,} events): "
            f"{direct['events_per_s']:,} events/s ({direct['seconds']} s)"
        )
        floor = projection_floor(store, min(total, args.direct_events))
        print(
            f"  parse + project in memory, no database (first {floor['events']:,} events): "
            f"{floor['events_per_s']:,} events/s"
        )
        result.data["results"] = {
            "projection_in_memory_no_database": floor,
            "projector": projected,
            "rebuild_http": rebuilt,
            "rebuild_in_process": direct,
            "event_log_mib": file_size_mib(*sqlite_files(db)),
            "ratio_rebuild_http_vs_in_process": ratio(
                rebuilt["events_per_s"], direct["events_per_s"]
            ),
        }
        result.data["memory_peak_mib"] = memory
        rate = rebuilt["events_per_s"]
        result.target("rebuild rate (events/s, over HTTP)", rate, ">= 50,000", rate >= 50_000)
    result.save()


if __name__ == "__main__":
    main()
