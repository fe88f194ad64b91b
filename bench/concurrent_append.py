"""1b. Concurrent appenders: 2 processes x 4 threads (gunicorn's default layout) appending one
event per command to one SQLite event log, ours against the raw single-commit floor.

- ours: command_service.adapters.event_store.EventStore, one per process, shared by its
  threads, on an engine made as the command API makes it
  (create_database_engine(EVENT_STORE_URL, Settings.sqlite_synchronous)); every append is
  its own call, so group commit (appends that arrive together share one transaction and one
  fsync) is what lets it beat the floor;
- raw_sqlite3: the floor: each thread its own sqlite3 connection with the same durability
  (WAL, synchronous as ours, busy timeout), one BEGIN IMMEDIATE / INSERT / COMMIT per command,
  positions assigned by SQLite (the events table's INTEGER PRIMARY KEY);
- raw_sqlite3_flock: the same raw loop with each transaction under an exclusive flock on a
  lock file (each thread its own descriptor), so waiting writers queue in the kernel instead
  of sleeping in SQLite's busy handler (1, 2, 5 ... 100 ms): a floor that never leaves the
  write lock idle, for comparison (the target is against raw_sqlite3);
- ours_max_batch_1 (when EventStore takes max_batch): ours with batches of one, i.e. the same
  code without group commit, to show what batching itself buys.

Each command is a new stream with one OrderPlaced event made by the real domain code; both
variants serialize its data and metadata to JSON inside the timed loop. The variants run
interleaved in rounds, each on its own database file, so a busy machine slows them alike.
A round's rate is the appends of all 8 threads over the time from the common start to the
last append's end. Mean batch size comes from the EventStore's group-commit statistics when
it has them (requests / transactions).
"""

from __future__ import annotations

import fcntl
import inspect
import json
import multiprocessing
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import Result, base_parser, percentiles, ratio, work_dir
from bench.workload import placed_events
from command_service.adapters.event_store import EventStore, NewEvent
from shared.infra.config import Settings
from shared.infra.db import SQLITE_BUSY_TIMEOUT_MS, create_database_engine

PROCESSES, THREADS = 2, 4
TEMPLATES_PER_THREAD = 200  # distinct event bodies per thread, reused with fresh ids
INSERT = (
    "INSERT INTO events (event_id, stream_id, stream_version, event_type, schema_version, "
    "data, metadata, recorded_at) VALUES (?, ?, 1, ?, ?, ?, ?, ?)"
)


def command_synchronous(folder: Path) -> str:
    """EVENT_STORE_SQLITE_SYNCHRONOUS as the command API resolves it (FULL by default)."""
    return Settings.from_env({"DATA_DIR": str(folder)}).sqlite_synchronous


def supports_max_batch() -> bool:
    return "max_batch" in inspect.signature(EventStore.__init__).parameters


def batch_stats(store: EventStore) -> dict[str, Any] | None:
    """The store's group-commit counters, if it keeps any (batches = transactions)."""
    stats = getattr(getattr(store, "group_commit", None), "stats", None)
    if stats is None or not hasattr(stats, "batches") or not hasattr(stats, "requests"):
        return None
    return {
        "batches": int(stats.batches),
        "requests": int(stats.requests),
        "largest": int(getattr(stats, "largest", 0)),
    }


class _Appender:
    """One process's way of appending: ours (a shared EventStore) or raw (per-thread sqlite3)."""

    def __init__(self, variant: str, db: Path, synchronous: str) -> None:
        self.variant = variant
        self.db = db
        self.synchronous = synchronous
        self.store: EventStore | None = None
        self._local = threading.local()
        if variant.startswith("ours"):
            engine = create_database_engine(f"sqlite:///{db}", synchronous)
            extra = {"max_batch": 1} if variant == "ours_max_batch_1" else {}
            self.store = EventStore(engine, **extra)

    def connect(self) -> sqlite3.Connection | None:
        """A thread's own connection (raw only)."""
        if self.store is not None:
            return None
        if self.variant == "raw_sqlite3_flock":
            self._local.lock_fd = open(f"{self.db}.bench-lock", "a")  # noqa: SIM115
        conn = sqlite3.connect(self.db, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    def append(self, conn: sqlite3.Connection | None, stream: str, event: NewEvent) -> None:
        if self.store is not None:
            self.store.append(stream, 0, [event])
            return
        assert conn is not None
        recorded_at = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
        row = (
            event.event_id,
            stream,
            event.event_type,
            event.schema_version,
            json.dumps(event.data),
            json.dumps(event.metadata),
            recorded_at,
        )
        lock = getattr(self._local, "lock_fd", None)
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(INSERT, row)
            conn.execute("COMMIT")
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _appending_process(
    variant: str,
    db: str,
    synchronous: str,
    seconds: float,
    tag: str,
    ready: Any,
    start_at: Any,
    out: Any,
) -> None:
    """A gunicorn-worker-like process: THREADS threads appending new streams until time is up."""
    import random
    import uuid

    appender = _Appender(variant, Path(db), synchronous)
    rng = random.Random(tag)
    templates = [
        [placed_events(f"{tag}-t{n}-{i}", rng)[0] for i in range(TEMPLATES_PER_THREAD)]
        for n in range(THREADS)
    ]
    before = batch_stats(appender.store) if appender.store is not None else None
    counts = [0] * THREADS
    ends = [0.0] * THREADS
    latencies: list[list[float]] = [[] for _ in range(THREADS)]
    errors: list[str] = []

    def work(n: int) -> None:
        conn = appender.connect()
        own = templates[n]
        while time.monotonic() < start_at.value:
            time.sleep(0.001)
        deadline = start_at.value + seconds
        i = 0
        try:
            while True:
                event = replace(own[i % len(own)], event_id=str(uuid.uuid4()))
                began = time.perf_counter()
                appender.append(conn, f"{tag}-{n}-{i}", event)
                now = time.monotonic()
                latencies[n].append((time.perf_counter() - began) * 1000)
                i += 1
                if now >= deadline:
                    ends[n] = now
                    break
        except Exception as exc:  # reported, not hidden: the round counts as failed
            errors.append(f"{type(exc).__name__}: {exc}")
            ends[n] = time.monotonic()
        counts[n] = i

    workers = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for worker in workers:
        worker.start()
    ready.put(tag)
    for worker in workers:
        worker.join()
    after = batch_stats(appender.store) if appender.store is not None else None
    stats = None
    if before is not None and after is not None:
        stats = {
            "batches": after["batches"] - before["batches"],
            "requests": after["requests"] - before["requests"],
            "largest": after["largest"],
        }
    out.put(
        {
            "appends": sum(counts),
            "last_end": max(ends),
            "latencies": [x for per_thread in latencies for x in per_thread],
            "batch_stats": stats,
            "errors": errors,
        }
    )


def run_round(variant: str, db: Path, synchronous: str, seconds: float, tag: str) -> dict[str, Any]:
    """One round: PROCESSES processes start their threads, then all begin at one instant."""
    context = multiprocessing.get_context("fork")
    ready, out = context.Queue(), context.Queue()
    start_at = context.Value("d", float("inf"))
    procs = [
        context.Process(
            target=_appending_process,
            args=(variant, str(db), synchronous, seconds, f"{tag}p{n}", ready, start_at, out),
        )
        for n in range(PROCESSES)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=120)
    began = time.monotonic() + 0.05
    start_at.value = began
    outcomes = [out.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(30)
    errors = [e for o in outcomes for e in o["errors"]]
    if errors:
        raise RuntimeError(f"{variant}: {len(errors)} appends failed, first: {errors[0]}")
    appends = sum(o["appends"] for o in outcomes)
    elapsed = max(o["last_end"] for o in outcomes) - began
    stats = [o["batch_stats"] for o in outcomes if o["batch_stats"] is not None]
    return {
        "appends": appends,
        "seconds": elapsed,
        "latencies": [x for o in outcomes for x in o["latencies"]],
        "batches": sum(s["batches"] for s in stats) if stats else None,
        "batched_requests": sum(s["requests"] for s in stats) if stats else None,
        "largest_batch": max(s["largest"] for s in stats) if stats else None,
    }


def summarize(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    appends = sum(r["appends"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    rates = [r["appends"] / r["seconds"] for r in rounds]
    summary: dict[str, Any] = {
        "appends_per_s": round(appends / seconds),
        "appends": appends,
        "seconds": round(seconds, 2),
        "best_round_appends_per_s": round(max(rates)),
        "worst_round_appends_per_s": round(min(rates)),
        "append_latency_ms": percentiles([x for r in rounds for x in r["latencies"]]),
    }
    if all(r["batches"] is not None for r in rounds):
        batches = sum(r["batches"] for r in rounds)
        requests = sum(r["batched_requests"] for r in rounds)
        summary["transactions"] = batches
        summary["mean_batch_size"] = round(requests / batches, 2) if batches else 0.0
        summary["largest_batch"] = max(r["largest_batch"] for r in rounds)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=None, help="per round (8; quick 3)")
    parser.add_argument("--rounds", type=int, default=None, help="per variant (5; quick 3)")
    args = parser.parse_args(argv)
    seconds = args.seconds or (3 if args.quick else 8)
    rounds = args.rounds or (3 if args.quick else 5)
    variants = ["ours", "raw_sqlite3", "raw_sqlite3_flock"]
    variants += ["ours_max_batch_1"] if supports_max_batch() else []
    with work_dir("concurrent-append", args.keep) as folder:
        synchronous = command_synchronous(folder)
        result = Result(
            "concurrent_append",
            {
                "processes": PROCESSES,
                "threads_per_process": THREADS,
                "events_per_command": 1,
                "rounds": rounds,
                "seconds_per_round": seconds,
                "variants": variants,
                "journal_mode": "WAL",
                "sqlite_synchronous": synchronous,
                "busy_timeout_ms": SQLITE_BUSY_TIMEOUT_MS,
                "raw_floor": "per thread: sqlite3, BEGIN IMMEDIATE, one INSERT, COMMIT",
            },
            args.quick,
        )
        dbs = {}
        for variant in variants:
            dbs[variant] = folder / f"{variant}.db"
            engine = create_database_engine(f"sqlite:///{dbs[variant]}", synchronous)
            EventStore(engine).create_schema()
            engine.dispose()
        per_variant: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        print(
            f"concurrent append: {PROCESSES} processes x {THREADS} threads, 1 event/command, "
            f"{rounds} rounds of {seconds:g} s per variant, synchronous={synchronous}"
        )
        for round_no in range(rounds):
            order = variants if round_no % 2 == 0 else list(reversed(variants))
            for variant in order:
                outcome = run_round(
                    variant, dbs[variant], synchronous, seconds, f"r{round_no}{variant[:4]}"
                )
                per_variant[variant].append(outcome)
                batches = outcome["batches"]
                mean = (
                    f", mean batch {outcome['batched_requests'] / batches:.2f}" if batches else ""
                )
                print(
                    f"  round {round_no + 1} {variant:17s} "
                    f"{outcome['appends'] / outcome['seconds']:>8,.0f} appends/s{mean}"
                )
        summaries = {v: summarize(r) for v, r in per_variant.items()}
        ours, raw = summaries["ours"], summaries["raw_sqlite3"]
        ours_vs_raw = ratio(ours["appends_per_s"], raw["appends_per_s"])
        summaries["ratios"] = {"ours_vs_raw_sqlite3": ours_vs_raw}
        # Round n of each variant ran back to back: the spread says how noisy the machine was.
        summaries["ours_vs_raw_sqlite3_by_round"] = [
            ratio(o["appends"] / o["seconds"], r["appends"] / r["seconds"])
            for o, r in zip(per_variant["ours"], per_variant["raw_sqlite3"], strict=True)
        ]
        summaries["ratios"]["ours_vs_raw_sqlite3_flock"] = ratio(
            ours["appends_per_s"], summaries["raw_sqlite3_flock"]["appends_per_s"]
        )
        if "ours_max_batch_1" in summaries:
            summaries["ratios"]["ours_vs_ours_max_batch_1"] = ratio(
                ours["appends_per_s"], summaries["ours_max_batch_1"]["appends_per_s"]
            )
        result.data["results"]["2x4"] = summaries
        for variant in variants:
            numbers = summaries[variant]
            lat = numbers["append_latency_ms"]
            mean = (
                f", mean batch {numbers['mean_batch_size']}" if "mean_batch_size" in numbers else ""
            )
            print(
                f"  {variant:17s} {numbers['appends_per_s']:>8,} appends/s, p50 "
                f"{lat.get('p50')} ms p99 {lat.get('p99')} ms{mean}"
            )
        if "mean_batch_size" not in ours:
            result.note("the EventStore exposes no group-commit statistics: no mean batch size")
        result.target(
            "concurrent appenders 2x4 vs raw single-commit floor",
            ours_vs_raw,
            ">= 1.5x",
            ours_vs_raw >= 1.5,
        )
    result.save()


if __name__ == "__main__":
    main()
