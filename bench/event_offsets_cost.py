"""What recording each event's Kafka offset (event_offsets) costs the projector's batch apply.

The projector's own batch step (Projector._apply_batch_once: parse, apply, write, positions)
runs in this process on Kafka records built as the relay builds them, into a fresh SQLite read
model per run, alternately with record_offsets as it is and replaced by a no-op. CPU time per
run, not wall time: on a shared machine the end-to-end rate (bench/projector.py) varies by more
than this cost. Not part of `make bench`:

    python -m bench.event_offsets_cost [--events N] [--rounds R]
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.partitioner.default import murmur2

from bench.common import Result, base_parser, work_dir
from bench.workload import fill_log
from command_service.adapters.event_store import EventStore
from command_service.outbox.message import message_headers
from query_service.projector import consumer as consumer_module
from query_service.projector.applier import EventApplier
from query_service.projector.consumer import Projector, ProjectorOptions
from query_service.read_model.event_offsets import record_offsets
from query_service.read_model.tables import create_read_model_engine, create_read_model_schema
from shared.infra.db import create_database_engine

PARTITIONS = 3
BATCH = ProjectorOptions.max_batch
TOPIC = "bench-offsets"


def polled_batches(store: EventStore) -> tuple[int, list[dict[TopicPartition, list[Any]]]]:
    """The log as the relay publishes it, cut into batches as poll() returns them."""
    by_partition: dict[int, list[Any]] = {p: [] for p in range(PARTITIONS)}
    after = events = 0
    while page := store.read_all(after, 5000):
        for event in page:
            key = event.stream_id.encode()
            partition = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS
            records = by_partition[partition]
            value = event.to_json()
            headers = message_headers(event, "urn:bench", None)
            records.append(
                ConsumerRecord(
                    TOPIC, partition, -1, len(records), 0, 0, key, value, headers, None,
                    len(key), len(value), -1,
                )
            )  # fmt: skip
        events += len(page)
        after = page[-1].position
    batches = []
    share = BATCH // PARTITIONS
    for start in range(0, max(len(r) for r in by_partition.values()), share):
        batch = {
            TopicPartition(TOPIC, p): records[start : start + share]
            for p, records in by_partition.items()
            if records[start : start + share]
        }
        batches.append(batch)
    return events, batches


def apply_all(folder: Path, run: int, batches: list[Any], events: int) -> float:
    """CPU seconds to apply every batch into a fresh read model."""
    engine = create_read_model_engine(f"sqlite:///{folder / f'read-{run}.db'}")
    create_read_model_schema(engine)
    options = ProjectorOptions(log_applied_events=False)
    projector = Projector(engine, TOPIC, lambda: None, EventApplier(None), options)
    started = time.process_time()
    for batch in batches:
        projector._apply_batch_once(batch, isolated=False)
    cpu = time.process_time() - started
    assert projector.stats.applied == events, projector.stats
    engine.dispose()
    return cpu


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--events", type=int, default=None, help="log size (40,000)")
    parser.add_argument("--rounds", type=int, default=None, help="runs of each kind (6)")
    args = parser.parse_args(argv)
    size = args.events or (10_000 if args.quick else 40_000)
    rounds = args.rounds or (2 if args.quick else 6)
    result = Result("event_offsets_cost", {"events": size, "rounds": rounds}, args.quick)
    # The consumer's own name for it, swapped for the runs without: the rest stays as shipped.
    recording = record_offsets
    with work_dir("event-offsets", args.keep) as folder:
        store = EventStore(create_database_engine(f"sqlite:///{folder / 'events.db'}"))
        store.create_schema()
        fill_log(store, size, "log")
        events, batches = polled_batches(store)
        cpu: dict[bool, list[float]] = {False: [], True: []}
        try:
            for run in range(rounds * 2):
                with_offsets = run % 2 == 1  # alternated, so drift in the machine hits both
                chosen = recording if with_offsets else _no_op
                consumer_module.record_offsets = chosen  # type: ignore[attr-defined]
                cpu[with_offsets].append(apply_all(folder, run, batches, events))
        finally:
            consumer_module.record_offsets = recording  # type: ignore[attr-defined]
    rates = {kind: [round(events / seconds) for seconds in runs] for kind, runs in cpu.items()}
    without, with_ = (statistics.median(cpu[kind]) for kind in (False, True))
    extra = round(100 * (with_ - without) / without, 1)
    for kind, label in ((False, "without offsets"), (True, "with offsets")):
        print(f"  {label}: {round(events / statistics.median(cpu[kind])):,} events per CPU-s")
    result.data["results"] = {
        "events": events,
        "events_per_cpu_s_without_offsets": rates[False],
        "events_per_cpu_s_with_offsets": rates[True],
        "extra_cpu_percent_median": extra,
    }
    result.target("extra CPU per applied event (%)", extra, "<= 10", extra <= 10)
    result.save()


def _no_op(conn: Any, rows: Any) -> None:
    """record_offsets' stand-in for the runs without offsets."""


if __name__ == "__main__":
    main()
