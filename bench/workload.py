"""Realistic events and requests for the benchmarks, made by the real domain code.

Orders go through the lifecycles the end-to-end suite uses (placed, paid, shipped, delivered,
cancelled); paying debits the customer's account and cancelling a paid order refunds it, as
the command service does. Events are appended with EventStore.append_streams in large batches,
so a log of a million events takes a minute, not an hour of HTTP calls. Each event's metadata
names the admin principal the HTTP benchmarks send (bench/auth.py), as every event written
through the command API names its verified caller.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.auth import bench_principal
from command_service.adapters.event_store import EventStore, NewEvent, StreamAppend
from command_service.application.commands import CommandContext, new_events
from command_service.application.orders import command_fingerprint
from command_service.domain import account as acc
from command_service.domain import order as order_domain
from command_service.domain import payments

PRODUCTS = tuple(f"p-{n:03d}" for n in range(200))
CUSTOMERS = tuple(f"c-{n:04d}" for n in range(1000))
PATHS: tuple[tuple[str, ...], ...] = (
    (),
    ("PAID",),
    ("PAID", "SHIPPED"),
    ("PAID", "SHIPPED", "DELIVERED"),
    ("PAID", "SHIPPED", "DELIVERED"),
    ("CANCEL",),
    ("PAID", "CANCEL"),
)
OPENING_DEPOSIT_CENTS = 90_000_000
PRINCIPAL = bench_principal()  # one token's caller, as from one client


def bench_context() -> CommandContext:
    """A command's context as the command API builds it for the benchmarks' admin token."""
    return CommandContext(principal=PRINCIPAL)


def place_order_command(order_id: str, rng: random.Random) -> order_domain.PlaceOrder:
    """A placement with one to three lines."""
    lines = tuple(
        order_domain.OrderLine(rng.choice(PRODUCTS), rng.randint(1, 5), rng.randint(100, 20_000))
        for _ in range(rng.randint(1, 3))
    )
    return order_domain.PlaceOrder(order_id, rng.choice(CUSTOMERS), lines)


def placed_events(order_id: str, rng: random.Random) -> list[NewEvent]:
    """The NewEvent the command service appends for a placement (metadata included)."""
    command = place_order_command(order_id, rng)
    return new_events(
        order_domain.decide(None, command), bench_context(), command_fingerprint(command)
    )


def place_order_body(rng: random.Random, order_id: str | None = None) -> dict[str, object]:
    """A POST /orders body (without order_id the service picks one)."""
    lines = [
        {
            "product_id": rng.choice(PRODUCTS),
            "quantity": rng.randint(1, 5),
            "unit_price": f"{rng.randint(1, 200)}.{rng.randint(0, 99):02d}",
        }
        for _ in range(rng.randint(1, 3))
    ]
    body: dict[str, object] = {"customer_id": rng.choice(CUSTOMERS), "lines": lines}
    if order_id is not None:
        body["order_id"] = order_id
    return body


def place_order_json(seed: int = 7) -> str:
    return json.dumps(place_order_body(random.Random(seed)))


@dataclass
class _Batch:
    """Events gathered per stream for one append_streams call (one expected version each)."""

    appends: dict[str, tuple[int, list[NewEvent]]] = field(default_factory=dict)
    count: int = 0

    def add(self, stream_id: str, version_before: int, events: list[NewEvent]) -> None:
        _expected, pending = self.appends.setdefault(stream_id, (version_before, []))
        pending.extend(events)
        self.count += len(events)


class LogGenerator:
    """Appends order lifecycles (with the account movements they cause) to an event store."""

    def __init__(self, store: EventStore, seed: int = 1) -> None:
        self.store = store
        self.rng = random.Random(seed)
        self.accounts: dict[str, acc.Account] = {}
        self.orders = 0
        self.events = 0

    def generate(
        self,
        total_events: int,
        batch_events: int = 5000,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Append at least `total_events` events (whole lifecycles), in batches."""
        target = self.events + total_events
        batch = _Batch()
        while self.events + batch.count < target:
            self._order_lifecycle(batch)
            if batch.count >= batch_events:
                self._flush(batch)
                batch = _Batch()
                if progress is not None:
                    progress(self.events)
        self._flush(batch)

    def _flush(self, batch: _Batch) -> None:
        if batch.count:
            appends = [StreamAppend(s, v, evs) for s, (v, evs) in batch.appends.items()]
            self.store.append_streams(appends)
            self.events += batch.count

    def _order_lifecycle(self, batch: _Batch) -> None:
        self.orders += 1
        order_id = f"o-{self.orders:08d}"
        command = place_order_command(order_id, self.rng)
        ctx = bench_context()
        account = self._account(command.customer_id, batch)
        events = order_domain.decide(None, command)
        state = order_domain.load(events)
        assert state is not None
        batch.add(order_id, 0, new_events(events, ctx, command_fingerprint(command)))
        for step in self.rng.choice(PATHS):
            change: order_domain.Command = (
                order_domain.CancelOrder(order_id, None)
                if step == "CANCEL"
                else order_domain.ChangeOrderStatus(order_id, order_domain.OrderStatus(step))
            )
            decision = payments.decide(state, account, change)
            batch.add(order_id, state.version, new_events(decision.order_events, ctx))
            for event in decision.order_events:
                state = order_domain.evolve(state, event)
            if decision.account_events:
                stream = acc.account_stream(account.customer_id)
                batch.add(stream, account.version, new_events(decision.account_events, ctx))
                for account_event in decision.account_events:
                    account = acc.evolve(account, account_event)
                self.accounts[account.customer_id] = account

    def _account(self, customer_id: str, batch: _Batch) -> acc.Account:
        account = self.accounts.get(customer_id)
        if account is None:
            events = acc.decide(None, acc.OpenAccount(customer_id, OPENING_DEPOSIT_CENTS))
            batch.add(acc.account_stream(customer_id), 0, new_events(events, bench_context()))
            account = acc.load(events)
            assert account is not None
            self.accounts[customer_id] = account
        return account


def fill_log(store: EventStore, total_events: int, label: str = "log") -> LogGenerator:
    """Generate a log of about `total_events` events and print progress."""
    started = time.monotonic()
    step = max(total_events // 5, 1)
    marks = iter(range(step, total_events + step, step))
    next_mark = [next(marks)]

    def progress(count: int) -> None:
        if count >= next_mark[0]:
            rate = count / (time.monotonic() - started)
            print(f"  {label}: {count:,} events appended ({rate:,.0f}/s)")
            next_mark[0] = next(marks, total_events * 10)

    generator = LogGenerator(store)
    generator.generate(total_events, progress=progress)
    print(
        f"  {label}: {generator.events:,} events ({generator.orders:,} orders) in "
        f"{time.monotonic() - started:.1f}s"
    )
    return generator
