"""6. Aggregate load time by stream length, with snapshots (SNAPSHOT_EVERY=100) and without.

The long streams are accounts (an order has at most four events): an opening, then deposits
and debits alternating, as a busy customer's account would read. Snapshots are the ones the
command service would hold: taken at the last multiple of SNAPSHOT_EVERY. 10,099 events is the
worst case with snapshots (99 events to fold after the snapshot). Loads of each case run
interleaved with and without snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Result, base_parser, cprofile_summary, percentiles, ratio, work_dir
from bench.workload import bench_context
from command_service.adapters.event_store import EventStore, NewEvent, Snapshot
from command_service.application.commands import new_events
from command_service.application.snapshots import SnapshottingLoader
from command_service.application.state_codecs import ACCOUNT_STATE, ORDER_STATE
from command_service.domain import account as acc
from command_service.domain import order as order_domain
from shared.infra.db import create_database_engine

SNAPSHOT_EVERY = 100


def account_stream_events(customer_id: str, length: int) -> list[Any]:
    """Domain events of an account with `length` events: opened, then deposit/debit pairs."""
    account: acc.Account | None = None
    events: list[Any] = []
    command: Any = acc.OpenAccount(customer_id, 0)
    for n in range(length):
        if n > 0:
            command = (
                acc.DepositFunds(customer_id, 10_000, f"d-{n}")
                if n % 2
                else acc.DebitAccount(customer_id, f"o-{n}", 5_000)
            )
        produced = acc.decide(account, command)[:1]
        events += produced
        for event in produced:
            account = acc.evolve(account, event)
    return events


def order_stream_events(order_id: str, length: int) -> list[Any]:
    """An order with 1 to 4 events: placed, paid, shipped, delivered."""
    line = order_domain.OrderLine("p-1", 2, 1250)
    events: list[Any] = order_domain.decide(
        None, order_domain.PlaceOrder(order_id, "c-1", (line, line))
    )
    state = order_domain.load(events)
    for status in ("PAID", "SHIPPED", "DELIVERED")[: length - 1]:
        produced = order_domain.decide(
            state, order_domain.ChangeOrderStatus(order_id, order_domain.OrderStatus(status))
        )
        events += produced
        state = order_domain.load(events)
    return events


def write_stream(store: EventStore, stream_id: str, events: list[Any], codec: Any) -> None:
    """Append in commands of up to 100 events, and the snapshot production would hold."""
    ctx = bench_context()  # the admin principal in each event's metadata, as over HTTP
    encoded: list[NewEvent] = new_events(events, ctx)
    for start in range(0, len(encoded), 100):
        store.append(stream_id, start, encoded[start : start + 100])
    snapshot_at = (len(events) // SNAPSHOT_EVERY) * SNAPSHOT_EVERY
    if snapshot_at:
        fold = acc.load if codec is ACCOUNT_STATE else order_domain.load
        state = fold(events[:snapshot_at])
        store.save_snapshot(
            Snapshot(stream_id, snapshot_at, codec.state_format, codec.to_json(state))
        )


CASES: tuple[tuple[str, str, int], ...] = (
    ("order", "order-1", 1),
    ("order", "order-4", 4),
    ("account", "account:a-1", 1),
    ("account", "account:a-100", 100),
    ("account", "account:a-10000", 10_000),
    ("account", "account:a-10099", 10_099),
)


def time_loads(load: Callable[[str], Any], stream_id: str, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        load(stream_id)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    args = parser.parse_args(argv)
    repeats_short, repeats_long = (20, 3) if args.quick else (300, 10)
    result = Result(
        "aggregate_load",
        {
            "snapshot_every": SNAPSHOT_EVERY,
            "repeats_short": repeats_short,
            "repeats_long": repeats_long,
        },
        args.quick,
    )
    with work_dir("aggregate", args.keep) as folder:
        store = EventStore(create_database_engine(f"sqlite:///{Path(folder) / 'events.db'}"))
        store.create_schema()
        loaders: dict[str, dict[str, SnapshottingLoader[Any]]] = {}
        for kind, stream_id, length in CASES:
            codec = ACCOUNT_STATE if kind == "account" else ORDER_STATE
            name = stream_id.split(":")[-1]
            events = (
                account_stream_events(name.replace("a-", "cust-"), length)
                if kind == "account"
                else order_stream_events(name, length)
            )
            write_stream(store, stream_id, events, codec)
            loaders[stream_id] = {
                "with_snapshots": SnapshottingLoader(store, codec, SNAPSHOT_EVERY),
                "without_snapshots": SnapshottingLoader(store, codec, 0),
            }
        rows: dict[str, Any] = {}
        for kind, stream_id, length in CASES:
            repeats = repeats_long if length >= 10_000 else repeats_short
            samples: dict[str, list[float]] = {"with_snapshots": [], "without_snapshots": []}
            for _ in range(repeats):  # interleaved, one load of each at a time
                for mode, loader in loaders[stream_id].items():
                    samples[mode] += time_loads(loader.load, stream_id, 1)
            row: dict[str, Any] = {"kind": kind, "events": length}
            for mode, values in samples.items():
                row[mode] = {"ms": percentiles(values, (50, 95))}
            row["speedup_with_snapshots"] = ratio(
                row["without_snapshots"]["ms"]["p50"], row["with_snapshots"]["ms"]["p50"]
            )
            rows[stream_id] = row
            print(
                f"  {kind:7s} {length:>6,} events: p50 {row['with_snapshots']['ms']['p50']:8.3f} ms"
                f" with snapshots, {row['without_snapshots']['ms']['p50']:8.3f} ms without"
            )
        result.data["results"]["streams"] = rows
        long_loader = loaders["account:a-10000"]["without_snapshots"]
        result.data["profiles"]["load_10000_account_events_without_snapshot"] = cprofile_summary(
            lambda: long_loader.load("account:a-10000")
        )
        short_loader = loaders["order-1"]["with_snapshots"]
        result.data["profiles"]["load_1_order_event"] = cprofile_summary(
            lambda: [short_loader.load("order-1") for _ in range(500)]
        )
    result.save()


if __name__ == "__main__":
    main()
