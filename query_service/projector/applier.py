"""Applies parsed events to the read model in batches: skip duplicates, repair gaps, write rows.

Used by the live projector (events from Kafka) and by the rebuild (events from the log feed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, IntegrityError

from query_service.projection.accounts import AccountRow, project_account
from query_service.projection.events import (
    AccountEvent,
    Event,
    OrderEvent,
    OrderEventBase,
    UnprojectableEvent,
)
from query_service.projection.orders import OrderRow, Step, next_step, project
from query_service.projection.parsing import parse_raw
from query_service.projector.batch_writes import PendingWrites
from query_service.read_model.account_writer import load_account, write_account_changes
from query_service.read_model.order_writer import ParkedEvent, load_order, park, write_order_changes

log = logging.getLogger("query_service.applier")


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
    def batch(
        self,
        conn: Connection,
        isolated: bool = False,
        starts_empty: bool = False,
    ) -> Iterator[ProjectionBatch]:
        """A batch in the caller's transaction; what it holds is written when it ends cleanly.

        starts_empty: the view tables started empty and events come in log order (a rebuild).
        """
        batch = ProjectionBatch(conn, self, isolated, starts_empty)
        yield batch
        batch.flush()


class ProjectionBatch:
    """Applies events in one transaction.

    By default the batch's stream rows are read once (see `prefetch`), changed in memory and
    written by `flush` with one statement per table (batch_writes.py). Isolated, each event's
    rows are written at once in a savepoint, so a row the database rejects (ROW_ERRORS) makes
    only that event unprojectable; that is several times slower, so callers use it only to
    find the culprit after a batch failed with such an error (or with ClaimLost). Customer
    and product counters, being deltas, are summed in memory and written by `flush` in both.
    """

    def __init__(
        self,
        conn: Connection,
        applier: EventApplier,
        isolated: bool,
        starts_empty: bool = False,
    ) -> None:
        self.conn = conn
        self.applier = applier
        self.isolated = isolated
        self.pending = PendingWrites(conn, starts_empty and not isolated)

    def prefetch(self, events: Iterable[Event]) -> None:
        """Read the rows of the streams these events touch in bulk, before applying them."""
        if not self.isolated:
            self.pending.prefetch(events)

    def apply(self, event: Event) -> Outcome:
        """Apply the event (after repairing a gap before it) or recognise it as a duplicate.

        Raises UnprojectableEvent (the caller parks it), CommandApiUnavailable or a database
        error (the caller rolls back and retries later).
        """
        # The stream's row is looked up once: it decides both the step and the changes.
        if isinstance(event, OrderEventBase):
            order = self._order_row(event.order_id)
            step = self._step(event, order)
            if step is Step.GAP:  # repaired: the row moved on
                order = self._order_row(event.order_id)
            written = step is not Step.DUPLICATE and self._write_order(order, event)
        else:
            account = self._account_row(event.customer_id)
            step = self._step(event, account)
            if step is Step.GAP:
                account = self._account_row(event.customer_id)
            written = step is not Step.DUPLICATE and self._write_account(account, event)
        return Outcome.APPLIED if written else Outcome.DUPLICATE

    def _step(self, event: Event, current: OrderRow | AccountRow | None) -> Step:
        """What the event is to its stream; a gap before it is repaired here."""
        applied = current.version if current else 0
        step = next_step(applied, event.version)
        if step is Step.GAP:
            self._repair_gap(event, applied)
        return step

    def flush(self) -> None:
        """Write what the batch holds; it may be called again (a rebuild writes in slices)."""
        self.pending.flush()

    def _order_row(self, order_id: str) -> OrderRow | None:
        return load_order(self.conn, order_id) if self.isolated else self.pending.order(order_id)

    def _account_row(self, customer_id: str) -> AccountRow | None:
        if self.isolated:
            return load_account(self.conn, customer_id)
        return self.pending.account(customer_id)

    def _write_order(self, current: OrderRow | None, event: OrderEvent) -> bool:
        changes = project(current, event)  # pure: it raises before anything is written
        if not self.isolated:
            self.pending.record_order(changes)
            return True
        written = self._in_savepoint(lambda: write_order_changes(self.conn, changes))
        if written:
            self.pending.count(changes)
        return written

    def _write_account(self, current: AccountRow | None, event: AccountEvent) -> bool:
        changes = project_account(current, event)  # pure: it raises before anything is written
        if not self.isolated:
            self.pending.record_account(changes)
            return True
        return self._in_savepoint(lambda: write_account_changes(self.conn, changes))

    def _in_savepoint(self, write: Callable[[], bool]) -> bool:
        try:
            with self.conn.begin_nested():
                return write()
        except ROW_ERRORS as exc:
            raise UnprojectableEvent(f"the read model rejected its rows: {exc.orig}") from exc

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
            current = self._order_row(event.order_id)
        else:
            current = self._account_row(event.customer_id)
        return current.version if current else 0

    def _apply_missing(self, raw: dict[str, Any], trigger: Event) -> bool:
        """Apply one event read for a repair; park it (and stop repairing) if it cannot apply."""
        try:
            missing = parse_raw(raw)
            if missing.stream_id != trigger.stream_id:
                raise UnprojectableEvent(f"the command API served it for {trigger.stream_id}")
            if isinstance(missing, OrderEventBase):
                self._write_order(self._order_row(missing.order_id), missing)
            else:
                self._write_account(self._account_row(missing.customer_id), missing)
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
