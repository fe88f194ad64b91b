"""The rebuild in small slices: rows of quiet streams forgotten and read back, parked events
kept, and the result equal to the projection.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from query_service import rebuild
from query_service.projector import batch_writes
from query_service.projector.command_api import EventsPage
from query_service.read_model import order_writer
from query_service.read_model.order_writer import load_positions
from query_service.read_model.views import ReadViews
from shared.contract.envelope import EventEnvelope
from tests.integration.query_support import (
    OrderEventLog,
    new_read_model,
    project_directly,
    sample_log,
    view_rows,
)


class ListSource:
    """GET /events over a list of envelopes, without HTTP."""

    def __init__(self, envelopes: list[EventEnvelope]) -> None:
        self.raw: list[Any] = [envelope.to_dict() for envelope in envelopes]

    def events_page(self, after: int, limit: int) -> EventsPage:
        page = self.raw[after : after + limit]
        next_after = after + len(page)
        return EventsPage(page, next_after, next_after < len(self.raw))


def late_log() -> OrderEventLog:
    """A log whose early orders and accounts move again long after they were last touched."""
    log = sample_log(orders=30)
    log.pay("o-000")
    log.cancel("o-001", "late")
    log.place("o-new", "c-0", [("p-0", 2, 500)])
    log.deposit("c-1", 700, deposit_id="dep-late")
    return log


def test_a_rebuild_in_small_slices_equals_the_projection_and_reads_back_forgotten_rows(
    read_model_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    log = late_log()
    reads: list[int] = []
    load_orders = order_writer.load_orders

    def counting_load(conn: Any, order_ids: Any) -> Any:
        reads.append(len(order_ids))
        return load_orders(conn, order_ids)

    monkeypatch.setattr(batch_writes, "load_orders", counting_load)
    monkeypatch.setattr(rebuild, "FLUSH_EVERY_EVENTS", 5)

    report = rebuild.rebuild_read_model(
        read_model_engine,
        ListSource(log.envelopes),
        "t",
        {0: 3},
        page_size=3,
    )

    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, log.envelopes)
    assert view_rows(read_model_engine) == view_rows(reference)
    assert (report.events, report.applied, report.parked) == (len(log.envelopes),) * 2 + (0,)
    assert reads, "the late events should have read their forgotten rows back"
    with read_model_engine.connect() as conn:
        assert load_positions(conn, "t") == {0: 3}


def test_parked_events_and_rejected_rows_in_slices(
    read_model_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(rebuild, "FLUSH_EVERY_EVENTS", 4)
    log = late_log()
    good = list(log.envelopes)
    raw_log = ListSource(good)
    raw_log.raw.insert(7, {"type": "OrderPlaced", "stream_id": "o-broken"})  # parked
    # An event id used twice: only the database notices (at a bulk write), and the
    # rebuild redoes its pass event by event, parking the second one.
    clash = log.place("o-clash", "c-0", [("p-0", 1, 100)])
    first_placed = next(e for e in good if e.type == "OrderPlaced")
    raw_log.raw.append({**clash.to_dict(), "event_id": first_placed.event_id})

    report = rebuild.rebuild_read_model(read_model_engine, raw_log, "t", None, page_size=3)

    assert (report.applied, report.parked) == (len(good), 2)
    assert ReadViews(read_model_engine).parked_count() == 2
    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, good)
    assert view_rows(read_model_engine) == view_rows(reference)
