"""1. Event store append, in-process: one command = one transaction, on SQLite (WAL, FULL).

Variants, each on its own fresh database file in the same folder, run interleaved in rounds
so a busy machine slows all of them alike:

- ours: command_service.adapters.event_store.EventStore.append (SQLAlchemy Core, BEGIN IMMEDIATE,
  head and stream-version queries, one INSERT, commit);
- raw_sqlite3: the floor: sqlite3 with the same PRAGMAs, the same table, one INSERT (or one
  executemany) and one commit per command, positions counted in memory;
- raw_sqlite3_same_sql: raw sqlite3 running the same statements as ours (head and stream
  version SELECTs too), so ours minus this is the library overhead, this minus raw the SQL;
- eventsourcing: the eventsourcing library's SQLiteApplicationRecorder.insert_events (its
  own table, global notification ids, optimistic concurrency by primary key).

Every variant serializes the same event data and metadata to JSON inside the timed loop; the
metadata names the caller's principal, as the authenticated command API records it.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

from bench.common import Result, base_parser, cprofile_summary, percentiles, ratio, work_dir
from bench.workload import placed_events
from command_service.adapters.event_store import EventStore, NewEvent
from shared.infra.db import SQLITE_BUSY_TIMEOUT_MS, create_database_engine

Command = tuple[str, list[NewEvent]]
Appender = Callable[[Command], None]

INSERT = (
    "INSERT INTO events (position, event_id, stream_id, stream_version, event_type, "
    "schema_version, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def make_commands(count: int, events_per_command: int, prefix: str) -> list[Command]:
    """`count` new streams, each written by one command of `events_per_command` events."""
    rng = random.Random(3)
    commands = []
    for i in range(count):
        stream = f"{prefix}-{i:07d}"
        events = [placed_events(stream, rng)[0] for _ in range(events_per_command)]
        commands.append((stream, events))
    return commands


def ours(path: Path) -> Appender:
    store = EventStore(create_database_engine(f"sqlite:///{path}", "FULL"))
    store.create_schema()

    def append(command: Command) -> None:
        store.append(command[0], 0, command[1])

    return append


def _raw_connection(path: Path) -> sqlite3.Connection:
    EventStore(create_database_engine(f"sqlite:///{path}")).create_schema()  # the same table
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def _rows(command: Command, head: int, version: int) -> list[tuple[Any, ...]]:
    recorded_at = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    stream, events = command
    return [
        (
            head + n,
            event.event_id,
            stream,
            version + n,
            event.event_type,
            event.schema_version,
            json.dumps(event.data),
            json.dumps(event.metadata),
            recorded_at,
        )
        for n, event in enumerate(events, start=1)
    ]


def raw_sqlite3(path: Path) -> Appender:
    conn = _raw_connection(path)
    head = [0]

    def append(command: Command) -> None:
        rows = _rows(command, head[0], 0)
        conn.execute("BEGIN IMMEDIATE")
        if len(rows) == 1:
            conn.execute(INSERT, rows[0])
        else:
            conn.executemany(INSERT, rows)
        conn.execute("COMMIT")
        head[0] += len(rows)

    return append


def raw_sqlite3_same_sql(path: Path) -> Appender:
    conn = _raw_connection(path)

    def append(command: Command) -> None:
        conn.execute("BEGIN IMMEDIATE")
        head = conn.execute("SELECT max(position) FROM events").fetchone()[0] or 0
        version = conn.execute(
            "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?",
            (command[0],),
        ).fetchone()[0]
        if version != 0:
            conn.execute("ROLLBACK")
            raise RuntimeError("version clash")
        conn.executemany(INSERT, _rows(command, head, version))
        conn.execute("COMMIT")

    return append


def eventsourcing_recorder(path: Path) -> Appender:
    datastore = SQLiteDatastore(
        str(path), lock_timeout=SQLITE_BUSY_TIMEOUT_MS // 1000, originator_id_type="text"
    )
    recorder = SQLiteApplicationRecorder(datastore)
    recorder.create_table()
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
    if synchronous != 2:
        raise RuntimeError(f"eventsourcing's connections run synchronous={synchronous}, not FULL")

    def append(command: Command) -> None:
        stream, events = command
        recorded_at = datetime.now(UTC).isoformat()
        recorder.insert_events(
            [
                StoredEvent(
                    originator_id=stream,
                    originator_version=n,
                    topic=f"orders:{event.event_type}",
                    state=json.dumps(
                        {
                            "event_id": event.event_id,
                            "schema_version": event.schema_version,
                            "recorded_at": recorded_at,
                            "data": event.data,
                            "metadata": event.metadata,
                        }
                    ).encode(),
                )
                for n, event in enumerate(events, start=1)
            ]
        )

    return append


VARIANTS: dict[str, Callable[[Path], Appender]] = {
    "ours": ours,
    "raw_sqlite3": raw_sqlite3,
    "raw_sqlite3_same_sql": raw_sqlite3_same_sql,
    "eventsourcing": eventsourcing_recorder,
}


def run_interleaved(
    folder: Path, commands_per_variant: int, events_per_command: int, rounds: int
) -> dict[str, dict[str, float]]:
    """Events/s of each variant, measured in alternating rounds."""
    appenders = {
        name: make(folder / f"{name}-{events_per_command}.db") for name, make in VARIANTS.items()
    }
    workloads = {
        name: make_commands(commands_per_variant, events_per_command, name) for name in VARIANTS
    }
    elapsed = dict.fromkeys(VARIANTS, 0.0)
    round_rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    chunk = commands_per_variant // rounds
    for round_no in range(rounds):
        order = list(VARIANTS) if round_no % 2 == 0 else list(reversed(VARIANTS))
        for name in order:
            todo = workloads[name][round_no * chunk : (round_no + 1) * chunk]
            append = appenders[name]
            started = time.perf_counter()
            for command in todo:
                append(command)
            seconds = time.perf_counter() - started
            elapsed[name] += seconds
            round_rates[name].append(len(todo) * events_per_command / seconds)
    events = chunk * rounds * events_per_command
    return {
        name: {
            "events_per_s": round(events / elapsed[name]),
            "commands_per_s": round(events / events_per_command / elapsed[name]),
            "us_per_command": round(1e6 * elapsed[name] / (events / events_per_command), 1),
            "best_round_events_per_s": round(max(round_rates[name])),
            "worst_round_events_per_s": round(min(round_rates[name])),
        }
        for name in VARIANTS
    }


def _contending_process(path: str, threads: int, seconds: float, out: Any, tag: str) -> None:
    """A gunicorn-worker-like process: `threads` threads appending new streams until time is up."""
    store = EventStore(create_database_engine(f"sqlite:///{path}", "FULL"))
    commands = make_commands(threads * 3000, 1, tag)
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def work(n: int) -> None:
        for command in commands[n::threads]:
            if time.monotonic() >= deadline:
                break
            started = time.perf_counter()
            store.append(command[0], 0, command[1])
            latencies[n].append((time.perf_counter() - started) * 1000)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put([x for per_thread in latencies for x in per_thread])


SHAPES = ((1, 1), (1, 4), (2, 4))


def run_contention(folder: Path, seconds: float) -> dict[str, Any]:
    """Appends from processes x threads at once, the way gunicorn's workers make them: total
    events/s and the latency of one append (waiting for SQLite's write lock included: its busy
    handler sleeps 1, 2, 5, 10 ... 100 ms between attempts, and a thread holding the lock can
    wait for its process's GIL)."""
    context = multiprocessing.get_context("fork")
    outcome: dict[str, Any] = {}
    for processes, threads in SHAPES:
        path = folder / f"contention-{processes}x{threads}.db"
        EventStore(create_database_engine(f"sqlite:///{path}")).create_schema()
        queue = context.Queue()
        procs = [
            context.Process(
                target=_contending_process,
                args=(str(path), threads, seconds, queue, f"p{n}"),
            )
            for n in range(processes)
        ]
        for proc in procs:
            proc.start()
        latencies: list[float] = []
        for _ in procs:
            latencies += queue.get()
        for proc in procs:
            proc.join()
        outcome[f"{processes}x{threads}"] = {
            "processes": processes,
            "threads_per_process": threads,
            "events_per_s": round(len(latencies) / seconds),
            "append_latency_ms": percentiles(latencies, (50, 95, 99)),
        }
    return outcome


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--commands", type=int, default=None, help="commands per variant")
    args = parser.parse_args(argv)
    commands = args.commands or (1000 if args.quick else 6000)
    rounds = 4 if args.quick else 6
    result = Result(
        "append",
        {
            "commands_per_variant": commands,
            "rounds": rounds,
            "sqlite_synchronous": "FULL",
            "journal_mode": "WAL",
        },
        args.quick,
    )
    with work_dir("append", args.keep) as folder:
        for per_command in (1, 10):
            count = commands if per_command == 1 else max(commands // 4, rounds)
            print(f"append: {count} commands x {per_command} event(s) per variant, {rounds} rounds")
            rates = run_interleaved(folder, count, per_command, rounds)
            for name, numbers in rates.items():
                print(
                    f"  {name:22s} {numbers['events_per_s']:>8,} events/s "
                    f"({numbers['us_per_command']} us/command)"
                )
            key = f"{per_command}_event{'s' if per_command > 1 else ''}_per_command"
            ours_rate = rates["ours"]["events_per_s"]
            rates["ratios"] = {
                "ours_vs_raw_sqlite3": ratio(ours_rate, rates["raw_sqlite3"]["events_per_s"]),
                "ours_vs_raw_same_sql": ratio(
                    ours_rate, rates["raw_sqlite3_same_sql"]["events_per_s"]
                ),
                "ours_vs_eventsourcing": ratio(ours_rate, rates["eventsourcing"]["events_per_s"]),
            }
            result.data["results"][key] = rates
            vs_raw = rates["ratios"]["ours_vs_raw_sqlite3"]
            vs_es = rates["ratios"]["ours_vs_eventsourcing"]
            result.target(
                f"append ({per_command}/command) vs raw sqlite3", vs_raw, ">= 0.8x", vs_raw >= 0.8
            )
            result.target(
                f"append ({per_command}/command) vs eventsourcing", vs_es, ">= 1.3x", vs_es >= 1.3
            )
        print("append: concurrent appenders (processes x threads; gunicorn's default is 2x4)")
        contention = run_contention(folder, 3 if args.quick else 6)
        for shape, numbers in contention.items():
            print(
                f"  {shape:5s} {numbers['events_per_s']:>6,} events/s, append p50 "
                f"{numbers['append_latency_ms']['p50']} ms p99 "
                f"{numbers['append_latency_ms']['p99']} ms"
            )
        result.data["results"]["concurrent_appends"] = contention
        profile_commands = make_commands(1000 if args.quick else 3000, 1, "profiled")
        append = ours(folder / "profiled.db")
        result.data["profiles"]["ours_1_event_per_command"] = cprofile_summary(
            lambda: [append(c) for c in profile_commands]
        )
    result.save()


if __name__ == "__main__":
    main()
