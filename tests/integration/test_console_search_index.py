"""The console's audit index on each backend (SQLite FTS5, PostgreSQL full text): search by id,
type and payload value, filtered log pages, idempotent pages, the position it has reached."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from ops.console.search import AuditIndex, EventFilter, open_index


def _event(position: int, stream: str, kind: str, **data: Any) -> dict[str, Any]:
    return {
        "event_id": f"e-{position:04d}",
        "type": kind,
        "stream_id": stream,
        "version": position,
        "position": position,
        "occurred_at": f"2026-12-01T10:00:{position:02d}.000000Z",
        "data": data,
        "metadata": {"correlation_id": f"corr-{position}", "principal": {"sub": "alice"}},
    }


@pytest.fixture
def index(database_url: str, backend: str) -> Iterator[AuditIndex]:
    index = open_index(database_url)
    yield index
    if backend == "postgresql":
        with index.engine.begin() as conn:
            conn.execute(text("DROP TABLE console_events, console_index_state"))
    index.engine.dispose()


def test_search_pages_and_position(index: AuditIndex) -> None:
    page = [
        _event(1, "o-1001", "OrderPlaced", lines=[{"product_id": "p-zebra", "quantity": 2}]),
        _event(2, "o-1001", "OrderStatusChanged", status="PAID"),
        _event(3, "o-2002", "OrderPlaced", lines=[{"product_id": "p-7", "quantity": 1}]),
    ]
    index.add(page, 3)
    index.add(page[1:], 3)  # a page read again is indexed once
    assert index.position() == 3
    assert [e.position for e in index.search("o-1001", 10)] == [2, 1]
    assert [e.position for e in index.search("p-zebra", 10)] == [1]
    assert [e.position for e in index.search("e-0003", 10)] == [3]
    assert [e.position for e in index.search("OrderPlaced o-2002", 10)] == [3]
    assert index.search('" OR 1=1 --', 10) == []  # operators are never interpreted
    assert index.search("   ", 10) == []
    [found] = index.search("PAID", 10)
    assert (found.principal, found.correlation_id) == ("alice", "corr-2")

    placed = EventFilter(event_type="OrderPlaced", newest_first=False)
    assert [e.position for e in index.page(placed, None, 10)] == [1, 3]
    assert [e.position for e in index.page(EventFilter(), 3, 1)] == [2]
    timed = EventFilter(since="2026-12-01T10:00:02.000000Z", until="2026-12-01T10:00:03.000000Z")
    assert [e.position for e in index.page(timed, None, 10)] == [2]
    assert [e.version for e in index.stream("o-1001")] == [1, 2]
    assert index.event_types() == ["OrderPlaced", "OrderStatusChanged"]
