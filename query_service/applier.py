"""Applies parsed events to the read model in batches: skip duplicates, repair gaps, write rows.

Used by the live projector (events from Kafka) and by the rebuild (events from the log feed).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError

from query_service.account_projections import AccountRow, project_account
from query_service.account_writer import load_account, write_account_changes
from query_service.events import (
    AccountEvent,
    Event,
    OrderEvent,
    OrderEventBase,
    UnprojectableEvent,
    parse_raw,
)
from query_service.projections import OrderRow, RowChanges, Step, next_step, project
from query_service.read_model import STATUS_COUNT_COLUMNS
from query_service.writer import (
    ParkedEvent,
    add_counters,
    load_order,
    park,
    write_order_changes,
)

log = logging.getLogger(__name__)


# Constraint and type violations come from an event's content, not from the database being
# unwell: they make that event unprojectable, and nothing else.
ROW_ERRORS = (IntegrityError, DataError)


class GapSource(Protocol):
    """Where the events of one stream can be read again (the command service's API)."""

    def order_events(self, order_id: str) -> list[dict[str, Any]]:
        """The order's events as raw envelope dicts, in version order."""
        ...

    def account_events(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's account events as raw envelope dicts, in version order."""
        ...


class Outcome(Enum):
    """What applying an event did."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"


@dataclass
class RepairCounts:
    """Running totals of gap repairs, for logs and tests."""

    gaps: int = 0
    repaired_events: int = 0


class EventApplier:
    """Long-lived: knows where gaps are repaired from and counts the repairs."""

    def __init__(self, gap_source: GapSource | None) -> None:
        self.gap_source = gap_source
        self.repairs = RepairCounts()

    @contextmanager
    def batch(self, conn: Connection, isolated: bool = False) -> Iterator[ProjectionBatch]:
        """A batch in the caller's transaction; its counters are written when it ends cleanly."""
        batch = ProjectionBatch(conn, self, isolated)
        yield batch
        batch.flush()


class ProjectionBatch:
    """Applies events in one transaction; customer and product counters, being deltas, are
    summed in memory and written once per row by `flush`, in the same transaction.
    """

    def __init__(self, conn: Connection, applier: EventApplier, isolated: bool) -> None:
        self.conn = conn
        self.applier = applier
        # Isolated: each event's writes run in a savepoint, so a row the database rejects
        # (ROW_ERRORS) makes only that event unprojectable. It costs ~40% of the throughput,
        # so callers use it only to find the culprit after a batch failed with such an error.
        self.isolated = isolated
        self._customers: dict[str, Counter[str]] = defaultdict(Counter)
        self._products: dict[str, Counter[str]] = defaultdict(Counter)

    def apply(self, event: Event) -> Outcome:
        """Apply the event (after repairing a gap before it) or recognise it as a duplicate.

        Raises UnprojectableEvent (the caller parks it), CommandApiUnavailable or a database
        error (the caller rolls back and retries later).
        """
        if isinstance(event, OrderEventBase):
            return self._apply_order(event)
        return self._apply_account(event)

    def flush(self) -> None:
        """Write the summed counters (called once, at the end of the batch)."""
        customers = {key: _all_columns(c, CUSTOMER_COUNTERS) for key, c in self._customers.items()}
        products = {key: _all_columns(c, PRODUCT_COUNTERS) for key, c in self._products.items()}
        add_counters(self.conn, customers, products)
        self._customers.clear()
        self._products.clear()

    def _apply_order(self, event: OrderEvent) -> Outcome:
        current = load_order(self.conn, event.order_id)
        step = next_step(current.version if current else 0, event.version)
        if step is Step.DUPLICATE:
            return Outcome.DUPLICATE
        if step is Step.GAP:
            self._repair_gap(event, current.version if current else 0)
            current = load_order(self.conn, event.order_id)
        written = self._write_order(current, event)
        return Outcome.APPLIED if written else Outcome.DUPLICATE

    def _apply_account(self, event: AccountEvent) -> Outcome:
        current = load_account(self.conn, event.customer_id)
        step = next_step(current.version if current else 0, event.version)
        if step is Step.DUPLICATE:
            return Outcome.DUPLICATE
        if step is Step.GAP:
            self._repair_gap(event, current.version if current else 0)
            current = load_account(self.conn, event.customer_id)
        written = self._write_account(current, event)
        return Outcome.APPLIED if written else Outcome.DUPLICATE

    def _write_order(self, current: OrderRow | None, event: OrderEvent) -> bool:
        changes = project(current, event)  # pure: it raises before anything is written
        written = self._isolated_if_asked(lambda: write_order_changes(self.conn, changes))
        if written:
            self._count(changes)
        return written

    def _write_account(self, current: AccountRow | None, event: AccountEvent) -> bool:
        changes = project_account(current, event)  # pure: it raises before anything is written
        return self._isolated_if_asked(lambda: write_account_changes(self.conn, changes))

    def _isolated_if_asked(self, write: Callable[[], bool]) -> bool:
        if not self.isolated:
            return write()
        try:
            with self.conn.begin_nested():
                return write()
        except ROW_ERRORS as exc:
            raise UnprojectableEvent(f"the read model rejected its rows: {exc.orig}") from exc

    def _count(self, changes: RowChanges) -> None:
        customer = self._customers[changes.customer.customer_id]
        customer["order_count"] += changes.customer.orders
        customer["total_cents"] += changes.customer.total_cents
        for status, delta in changes.customer.by_status.items():
            customer[STATUS_COUNT_COLUMNS[status]] += delta
        for product in changes.products:
            sales = self._products[product.product_id]
            sales["units_sold"] += product.units
            sales["amount_cents"] += product.amount_cents
            sales["order_count"] += product.orders

    def _repair_gap(self, event: Event, applied: int) -> None:
        """Apply the versions between `applied` and the event's, read from the gap source."""
        self.applier.repairs.gaps += 1
        log.warning(
            "version gap: reading the missing events from the command API",
            extra={
                "stream_id": event.stream_id,
                "applied_version": applied,
                "event_version": event.version,
                "event_id": event.event_id,
            },
        )
        gap_source = self.applier.gap_source
        if gap_source is None:
            raise UnprojectableEvent(
                f"version gap: stream {event.stream_id} is at version {applied}, "
                f"event {event.event_id} is version {event.version}"
            )
        if isinstance(event, OrderEventBase):
            stream = gap_source.order_events(event.order_id)
        else:
            stream = gap_source.account_events(event.customer_id)
        for raw in stream:
            version = raw.get("version") if isinstance(raw, dict) else None
            if not isinstance(version, int) or not applied < version < event.version:
                continue
            # A version the source lacks cannot be skipped: stop, and the check below parks.
            if version != applied + 1 or not self._apply_missing(raw, event):
                break
            applied = self._applied_version(event)
        if applied != event.version - 1:
            raise UnprojectableEvent(
                f"version gap not repaired: stream {event.stream_id} is at version {applied} "
                f"after reading the command API, event {event.event_id} is version "
                f"{event.version}"
            )

    def _applied_version(self, event: Event) -> int:
        current: OrderRow | AccountRow | None
        if isinstance(event, OrderEventBase):
            current = load_order(self.conn, event.order_id)
        else:
            current = load_account(self.conn, event.customer_id)
        return current.version if current else 0

    def _apply_missing(self, raw: dict[str, Any], trigger: Event) -> bool:
        """Apply one event read for a repair; park it (and stop repairing) if it cannot apply."""
        try:
            missing = parse_raw(raw)
            if missing.stream_id != trigger.stream_id:
                raise UnprojectableEvent(f"the command API served it for {trigger.stream_id}")
            if isinstance(missing, OrderEventBase):
                self._write_order(load_order(self.conn, missing.order_id), missing)
            else:
                self._write_account(load_account(self.conn, missing.customer_id), missing)
        except UnprojectableEvent as exc:
            error = f"{exc} (read to repair the gap before event {trigger.event_id})"
            log.error(
                "parked an event read for a gap repair",
                extra={"stream_id": trigger.stream_id, "error": error},
            )
            event_id = raw.get("event_id")
            park(
                self.conn,
                ParkedEvent(
                    origin="gap-repair",
                    error=error,
                    value=json.dumps(raw, default=str).encode(),
                    event_id=event_id if isinstance(event_id, str) else None,
                    stream_id=trigger.stream_id,
                ),
            )
            return False
        self.applier.repairs.repaired_events += 1
        return True


CUSTOMER_COUNTERS = ("order_count", "total_cents", *STATUS_COUNT_COLUMNS.values())
PRODUCT_COUNTERS = ("units_sold", "amount_cents", "order_count")


def _all_columns(counts: Counter[str], columns: tuple[str, ...]) -> dict[str, int]:
    return {column: counts[column] for column in columns}
