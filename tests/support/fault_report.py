"""What a fault scenario ends with: every count that says nothing was lost or counted twice.

`finish_scenario` is how every scenario ends: after the system converged, `FaultReport.collect`
reads the event log, the whole Kafka topic and the read model's tables; the report is printed
as one line and kept for the session's summary, and `assert_clean` fails the scenario unless
lost == 0 and counted twice == 0.

- lost: acknowledged commands missing from the log, plus log events missing from the topic,
  plus log events missing from the read model (history rows, statement lines, accounts).
- counted twice: read-model rows that are no event of the log or more rows than events,
  counters (customers, products, accounts) above what the log implies, and effects the log
  holds twice (two debits or two refunds of one order, one deposit_id deposited twice).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from query_service.read_model.tables import (
    account_statement,
    accounts,
    create_read_model_engine,
    customer_summaries,
    order_history,
    orders,
    product_sales,
)
from shared.contract.envelope import EventEnvelope
from tests.support.checks import assert_acknowledged_present, assert_views_match
from tests.support.faults import published_position
from tests.support.kafka_topic import TopicContents, read_topic
from tests.support.order_system import OrderSystem
from tests.support.processes import wait_until
from tests.support.reference_model import ACCOUNT_STREAM_PREFIX, ExpectedViews
from tests.support.workload import Acknowledged

# Every report of the session, printed again in pytest's terminal summary.
REPORTS: list[FaultReport] = []

COLUMNS = (
    ("scenario", 36),
    ("acked", 6),
    ("log", 6),
    ("topic", 6),
    ("msgs", 6),
    ("orders", 6),
    ("history", 7),
    ("stmt", 5),
    ("lost", 4),
    ("twice", 5),
    ("retries", 7),
    ("secs", 5),
)


@dataclass
class ReadModelRows:
    """The read model's rows that the report counts and compares with the log."""

    order_versions: dict[str, int]
    history_event_ids: list[str]
    statement_event_ids: list[str]
    account_versions: dict[str, int]
    customers: dict[str, tuple[int, int]]  # order_count, total_cents
    products: dict[str, tuple[int, int, int]]  # units_sold, amount_cents, order_count
    account_totals: dict[str, tuple[int, int, int]]  # deposited, debited, credited

    @classmethod
    def read(cls, url: str) -> ReadModelRows:
        engine = create_read_model_engine(url)
        try:
            with engine.connect() as conn:

                def rows(*columns: Any) -> list[Any]:
                    return list(conn.execute(select(*columns)))

                return cls(
                    order_versions=dict(rows(orders.c.order_id, orders.c.version)),
                    history_event_ids=[r[0] for r in rows(order_history.c.event_id)],
                    statement_event_ids=[r[0] for r in rows(account_statement.c.event_id)],
                    account_versions=dict(rows(accounts.c.customer_id, accounts.c.version)),
                    customers={
                        r[0]: (r[1], r[2])
                        for r in rows(
                            customer_summaries.c.customer_id,
                            customer_summaries.c.order_count,
                            customer_summaries.c.total_cents,
                        )
                    },
                    products={
                        r[0]: (r[1], r[2], r[3])
                        for r in rows(
                            product_sales.c.product_id,
                            product_sales.c.units_sold,
                            product_sales.c.amount_cents,
                            product_sales.c.order_count,
                        )
                    },
                    account_totals={
                        r[0]: (r[1], r[2], r[3])
                        for r in rows(
                            accounts.c.customer_id,
                            accounts.c.deposited_cents,
                            accounts.c.debited_cents,
                            accounts.c.credited_cents,
                        )
                    },
                )
        finally:
            engine.dispose()


@dataclass
class FaultReport:
    """The numbers one scenario ends with; `details` says where any loss or double is."""

    scenario: str
    acknowledged: int
    log_events: int
    topic_distinct: int
    topic_messages: int
    read_orders: int
    history_rows: int
    statement_lines: int
    lost: int
    counted_twice: int
    retries: int
    seconds: float
    # Messages whose version skipped past the next one of their order: a reorder or a hole.
    reordered: int = 0
    details: list[str] = field(default_factory=list)
    notes: str = ""
    duplicates: str = ""

    @classmethod
    def collect(
        cls,
        scenario: str,
        system: OrderSystem,
        acknowledged: Iterable[Acknowledged],
        expected: ExpectedViews,
        retries: int,
        started: float,
        notes: str = "",
    ) -> FaultReport:
        """Read log, topic and read model (waiting until the relay published the whole log)."""
        log = system.event_log()
        head = log[-1].position if log else 0
        wait_until(
            lambda: published_position(system) >= head,
            120,
            lambda: f"relay at {published_position(system)} of {head}",
            interval=0.2,
        )
        topic = read_topic(system.bootstrap, system.topic)
        rows = ReadModelRows.read(system.read_model_url)
        acks = {(a.stream_id, a.version) for a in acknowledged}
        details: list[str] = []
        lost = _lost(acks, log, topic, rows, details)
        twice = _counted_twice(log, expected, rows, details)
        details += [f"topic skipped ahead: {s}" for s in topic.skipped_ahead[:5]]
        return cls(
            scenario=scenario,
            acknowledged=len(acks),
            log_events=len(log),
            topic_distinct=len(topic.event_ids),
            topic_messages=topic.messages,
            read_orders=len(rows.order_versions),
            history_rows=len(rows.history_event_ids),
            statement_lines=len(rows.statement_event_ids),
            lost=lost,
            counted_twice=twice,
            reordered=len(topic.skipped_ahead),
            retries=retries,
            seconds=time.monotonic() - started,
            details=details,
            notes=notes,
            duplicates=topic.describe_duplicates(),
        )

    def values(self) -> tuple[Any, ...]:
        return (
            self.scenario,
            self.acknowledged,
            self.log_events,
            self.topic_distinct,
            self.topic_messages,
            self.read_orders,
            self.history_rows,
            self.statement_lines,
            self.lost,
            self.counted_twice,
            self.retries,
            f"{self.seconds:.1f}",
        )

    def line(self) -> str:
        cells = [
            f"{value!s:>{width}}" for (_, width), value in zip(COLUMNS, self.values(), strict=True)
        ]
        cells[0] = f"{self.scenario:<{COLUMNS[0][1]}}"
        return " | ".join(cells) + (f" | {self.notes}" if self.notes else "")

    def print(self) -> None:
        print(f"\n{header()}\n{self.line()}")
        if self.duplicates:
            print(f"  topic: {self.duplicates}")
        for detail in self.details[:20]:
            print(f"  ! {detail}")

    def assert_clean(self) -> None:
        """lost == 0, counted twice == 0 (and no reorder on the topic), with the findings."""
        assert (self.lost, self.counted_twice, self.reordered) == (0, 0, 0), (
            f"{self.scenario}: lost {self.lost}, counted twice {self.counted_twice}, "
            f"reordered on the topic {self.reordered}:\n" + "\n".join(self.details[:20])
        )


def header() -> str:
    cells = [f"{name:>{width}}" for name, width in COLUMNS]
    cells[0] = f"{COLUMNS[0][0]:<{COLUMNS[0][1]}}"
    return " | ".join(cells)


def finish_scenario(
    scenario: str,
    system: OrderSystem,
    acknowledged: list[Acknowledged],
    retries: int,
    started: float,
    notes: str = "",
    orders: int | None = None,
) -> ExpectedViews:
    """A scenario's common end, once its fault is over and its clients are done.

    Waits for convergence; collects, prints and keeps the report and asserts lost == 0 and
    counted twice == 0; then checks every acknowledged command is in the log and projected,
    that `orders` orders were placed (each once), and every GET view against the log's fold.
    """
    expected = system.wait_converged(180)
    report = FaultReport.collect(scenario, system, acknowledged, expected, retries, started, notes)
    report.print()
    REPORTS.append(report)
    report.assert_clean()
    if orders is not None:
        assert len(expected.orders) == orders, "every planned order placed, exactly once"
    assert_acknowledged_present(acknowledged, system.event_log(), system.projected_versions())
    assert_views_match(system.query_api.base_url, expected, system.admin_headers)
    return expected


def _lost(
    acks: set[tuple[str, int]],
    log: list[EventEnvelope],
    topic: TopicContents,
    rows: ReadModelRows,
    details: list[str],
) -> int:
    in_log = {(e.stream_id, e.version) for e in log}
    not_in_log = sorted(acks - in_log)
    details += [f"acknowledged, not in the log: {a}" for a in not_in_log[:5]]
    not_on_topic = [e for e in log if e.event_id not in topic.event_ids]
    details += [
        f"in the log, not on the topic: {e.stream_id} v{e.version}" for e in not_on_topic[:5]
    ]
    projected = set(rows.history_event_ids) | set(rows.statement_event_ids)
    missing = []
    for event in log:
        if event.type == "AccountOpened":
            customer_id = event.stream_id.removeprefix(ACCOUNT_STREAM_PREFIX)
            if customer_id not in rows.account_versions:
                missing.append(event)
        elif event.event_id not in projected:
            missing.append(event)
    details += [
        f"in the log, not in the read model: {e.stream_id} v{e.version}" for e in missing[:5]
    ]
    return len(not_in_log) + len(not_on_topic) + len(missing)


def _counted_twice(
    log: list[EventEnvelope], expected: ExpectedViews, rows: ReadModelRows, details: list[str]
) -> int:
    found: list[str] = []
    log_ids = {e.event_id for e in log}
    for name, ids in (("history", rows.history_event_ids), ("statement", rows.statement_event_ids)):
        found += [f"{name} row for no event of the log: {i}" for i in ids if i not in log_ids]
        found += [f"{name} rows for one event: {i}" for i, n in Counter(ids).items() if n > 1]
    found += [
        f"read-model order not in the log: {o}"
        for o in rows.order_versions.keys() - expected.orders.keys()
    ]
    # Effects the log itself holds twice.
    effects: Counter[tuple[str, str]] = Counter()
    for event in log:
        if event.type in ("AccountDebited", "AccountCredited"):
            effects[(event.type, event.data["order_id"])] += 1
        elif event.type == "FundsDeposited" and event.data.get("deposit_id"):
            effects[(event.type, event.data["deposit_id"])] += 1
    found += [f"log holds {n} x {kind} {ref}" for (kind, ref), n in effects.items() if n > 1]
    # Counters above what the log implies (below would be a loss, which the views check finds).
    for customer_id, (count, total) in rows.customers.items():
        want = expected.customers.get(customer_id, {"order_count": 0, "total_cents": 0})
        if count > want["order_count"] or total > want["total_cents"]:
            found.append(f"customer {customer_id}: {(count, total)} > {want}")
    for product_id, counters in rows.products.items():
        sales = expected.products.get(product_id, {})
        want_p = tuple(sales.get(k, 0) for k in ("units_sold", "amount_cents", "order_count"))
        if any(got > w for got, w in zip(counters, want_p, strict=True)):
            found.append(f"product {product_id}: {counters} > {want_p}")
    for customer_id, totals in rows.account_totals.items():
        account = expected.accounts.get(customer_id)
        want_a = (
            (account.deposited_cents, account.debited_cents, account.credited_cents)
            if account
            else (0, 0, 0)
        )
        if any(got > w for got, w in zip(totals, want_a, strict=True)):
            found.append(f"account {customer_id}: {totals} > {want_a}")
    details += found
    return len(found)
