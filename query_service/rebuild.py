"""`query-rebuild`: rebuild the read model from scratch from the command service's event log.

Source: GET /events (paged), not the topic. The log is the source of truth: complete, gapless
and in position order, while the topic may be trimmed by retention, lag behind the log (relay)
and hold duplicates.

Swap: truncate and reload in ONE transaction on the live read model, so readers see the old
rows until the commit and the new ones after it, and a failure (or Ctrl-C) leaves the old rows.
SQLite readers keep their WAL snapshot; on PostgreSQL the tables are locked EXCLUSIVE (reads go
on). A running projector waits for the lock and retries, so it need not be stopped.

Tracking: the topic's end offsets are read *before* the feed. Every message below them was
published before the feed was read, so its event is in the rebuild; they are stored as the
projector's positions, and the projector re-reads only what was published meanwhile, skipping
those events by version. If Kafka does not answer, no positions are stored: the projector then
reads the topic from its beginning and skips every event at or below the rebuilt versions.
Parked events are kept: they are an operator's to-do list, not part of the views.

Speed and memory: the tables start empty, so a stream's first event reads nothing back. Rows
are written in bulk every FLUSH_EVERY_EVENTS (batch_writes.py), and the next page of the feed
is read while the current one is applied. Rows of streams no slice has touched since the last
one are forgotten (read back if a later event needs them), so memory does not grow with the
log. Only if the database rejects a row is the log applied again event by event, each in a
savepoint, to park it.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, delete, text

from query_service.projection.events import Event, UnprojectableEvent
from query_service.projection.parsing import parse_raw
from query_service.projector.applier import ROW_ERRORS, EventApplier, ProjectionBatch
from query_service.projector.batch_writes import ClaimLost
from query_service.projector.command_api import CommandApiClient, CommandApiUnavailable, EventsPage
from query_service.projector.lag import kafka_end_offsets
from query_service.read_model.order_writer import ParkedEvent, park, save_positions
from query_service.read_model.tables import (
    TRACKING_TABLES,
    VIEW_TABLES,
    create_read_model_engine,
    create_read_model_schema,
)
from shared.contract.principal import EVENTS_READ
from shared.infra.auth_setup import service_token
from shared.infra.config import Settings
from shared.infra.db import write_transaction
from shared.infra.progress import ProgressBar
from shared.infra.structured_logging import configure_logging

log = logging.getLogger(__name__)

MAX_PAGE_SIZE = 1000  # the command API's own limit
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE
# Events whose rows are held in memory between bulk writes.
FLUSH_EVERY_EVENTS = 10_000
# Allocations between the garbage collector's youngest-generation passes during a rebuild
# (Python's default is 700); see _fewer_collections.
REBUILD_GC_THRESHOLD = 100_000
PAGE_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)  # then the rebuild gives up and rolls back
KAFKA_TIMEOUT_S = 5.0


class EventFeed(Protocol):
    """Where the rebuild reads the log: the command API's GET /events, or a stand-in."""

    def events_page(self, after: int, limit: int) -> EventsPage:
        """Up to `limit` events of the log after a position."""
        ...


class RebuildFailed(Exception):
    """The feed could not be read to its end; the old read model is untouched."""


@dataclass(frozen=True)
class RebuildReport:
    """What a rebuild did."""

    events: int
    applied: int
    parked: int
    positions: dict[int, int] | None
    seconds: float


def rebuild_read_model(
    engine: Engine,
    source: EventFeed,
    topic: str,
    end_offsets: dict[int, int] | None,
    page_size: int = DEFAULT_PAGE_SIZE,
    progress: ProgressBar | None = None,
    retry_delays_s: tuple[float, ...] = PAGE_RETRY_DELAYS_S,
) -> RebuildReport:
    """Replace the read model's rows with a projection of the whole log, in one transaction."""
    started = time.monotonic()
    create_read_model_schema(engine)
    args = (engine, source, topic, end_offsets, page_size, progress, retry_delays_s)
    try:
        with _fewer_collections():
            counts = _rebuild_once(*args, isolated=False)
    except (*ROW_ERRORS, ClaimLost) as exc:
        # Rare: an event whose rows the database rejects. Redo it all with a savepoint per
        # event (slower), so that only that event is parked.
        log.warning(
            "an event broke the rebuild; redoing it event by event", extra={"error": repr(exc)}
        )
        if progress is not None:
            progress.restart()
        counts = _rebuild_once(*args, isolated=True)
    return RebuildReport(*counts, end_offsets, time.monotonic() - started)


def _rebuild_once(
    engine: Engine,
    source: EventFeed,
    topic: str,
    end_offsets: dict[int, int] | None,
    page_size: int,
    progress: ProgressBar | None,
    retry_delays_s: tuple[float, ...],
    isolated: bool,
) -> tuple[int, int, int]:
    applier = EventApplier(gap_source=None)  # a gap in the complete log cannot be repaired
    events = applied = parked = unflushed = 0
    with (
        write_transaction(engine) as conn,
        ThreadPoolExecutor(1, thread_name_prefix="rebuild-feed") as reader,
        applier.batch(conn, isolated, starts_empty=True) as projection,
    ):
        _truncate(conn)
        next_page = reader.submit(_read_page, source, 0, page_size, retry_delays_s)
        while True:
            page = next_page.result()
            more = page.has_more and bool(page.events)
            if more:
                # Read the next page while this one is applied: the feed's latency overlaps.
                args = (source, page.next_after, page_size, retry_delays_s)
                next_page = reader.submit(_read_page, *args)
            parsed = [(raw, _parse(raw)) for raw in page.events]
            projection.prefetch(e for _, e in parsed if not isinstance(e, UnprojectableEvent))
            for raw, event in parsed:
                if _apply(projection, raw, event):
                    applied += 1
                else:
                    parked += 1
            events += len(page.events)
            unflushed += len(page.events)
            if unflushed >= FLUSH_EVERY_EVENTS:
                # Bounds the memory the pending rows take.
                projection.flush()
                unflushed = 0
            if progress is not None:
                progress.advance(len(page.events))
            if not more:
                break
        if end_offsets:
            save_positions(conn, topic, end_offsets)
    return events, applied, parked


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector less often for the duration, then as before."""
    # The rebuild allocates several objects per event and keeps the stream rows to the end,
    # and hardly any of them are in reference cycles: collecting every 700 allocations cost
    # about a tenth of its CPU (the thresholds are process-wide, hence restored after).
    thresholds = gc.get_threshold()
    gc.set_threshold(REBUILD_GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def _truncate(conn: Connection) -> None:
    tables = (*VIEW_TABLES, *TRACKING_TABLES)
    if conn.dialect.name == "postgresql":
        names = ", ".join(table.name for table in tables)
        conn.execute(text(f"LOCK TABLE {names} IN EXCLUSIVE MODE"))
    for table in tables:
        conn.execute(delete(table))


def _read_page(
    source: EventFeed, after: int, limit: int, retry_delays_s: tuple[float, ...]
) -> EventsPage:
    for delay_s in (*retry_delays_s, None):
        try:
            return source.events_page(after, limit)
        except CommandApiUnavailable as exc:
            if delay_s is None:
                raise RebuildFailed(f"cannot read the event feed after {after}: {exc}") from exc
            log.warning("event feed unavailable; retrying", extra={"error": str(exc)})
            time.sleep(delay_s)
    raise AssertionError("unreachable")


def _parse(raw: Any) -> Event | UnprojectableEvent:
    try:
        return parse_raw(raw)
    except UnprojectableEvent as exc:
        return exc


def _apply(projection: ProjectionBatch, raw: Any, event: Event | UnprojectableEvent) -> bool:
    """Apply one parsed feed event; False if it had to be parked."""
    try:
        if isinstance(event, UnprojectableEvent):
            raise event
        projection.apply(event)
        return True
    except UnprojectableEvent as exc:
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        stream_id = raw.get("stream_id") if isinstance(raw, dict) else None
        log.error("parked a log event", extra={"event_id": event_id, "error": str(exc)})
        park(
            projection.conn,
            ParkedEvent(
                origin="rebuild",
                error=str(exc),
                value=json.dumps(raw, default=str).encode(),
                event_id=event_id if isinstance(event_id, str) else None,
                stream_id=stream_id if isinstance(stream_id, str) else None,
            ),
        )
        return False


def main(argv: list[str] | None = None) -> int:
    """Console script entry point; exit status 0 on success, 1 if the old model was kept."""
    parser = argparse.ArgumentParser(prog="query-rebuild", description=__doc__)
    parser.add_argument("--page-size", type=int, default=DEFAULT_PAGE_SIZE)
    parser.add_argument(
        "--no-kafka", action="store_true", help="do not store Kafka positions (see above)"
    )
    args = parser.parse_args(argv)
    page_size = max(1, min(args.page_size, MAX_PAGE_SIZE))
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    end_offsets = None if args.no_kafka else _end_offsets_or_none(settings)
    token = service_token(settings, "query-rebuild", [EVENTS_READ])
    source = CommandApiClient(settings.command_api_url, token=token)
    progress = ProgressBar(source.head_position(), "rebuild")
    engine = create_read_model_engine(settings.read_model_url)
    try:
        report = rebuild_read_model(
            engine, source, settings.kafka_topic, end_offsets, page_size, progress
        )
    except RebuildFailed as exc:
        progress.close()
        print(f"rebuild failed, the read model is unchanged: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    progress.close()
    positions = dict(sorted(report.positions.items())) if report.positions else None
    print(
        f"rebuilt the read model from {report.events:,} events in {report.seconds:.1f}s "
        f"({report.applied:,} applied, {report.parked:,} parked); projector positions: "
        f"{positions or 'none (the projector re-reads the topic, skipping by version)'}",
        file=sys.stderr,
    )
    return 0


def _end_offsets_or_none(settings: Settings) -> dict[int, int] | None:
    try:
        return kafka_end_offsets(settings, KAFKA_TIMEOUT_S)
    except Exception as exc:
        log.warning("Kafka end offsets unknown", extra={"error": repr(exc)})
        return None


if __name__ == "__main__":
    sys.exit(main())
