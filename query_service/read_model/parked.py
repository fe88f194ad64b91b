"""Parked events as an operator sees them, and the audit log of what operators did with them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, RowMapping, delete, insert, select, update

from query_service.read_model.tables import parked_event_actions, parked_events


@dataclass(frozen=True)
class ParkedPage:
    """Parked rows, oldest first, and the id to continue after (None on the last page)."""

    rows: list[RowMapping]
    next_after: int | None


@dataclass(frozen=True)
class OperatorAction:
    """One line of the audit log: who did what to which parked event, and how it went."""

    parked_id: int
    action: str  # retry or discard
    outcome: str  # applied, duplicate, failed or discarded
    by_sub: str
    by_iss: str
    reason: str | None
    event_id: str | None
    stream_id: str | None
    detail: str | None = None


def parked_page(engine: Engine, after: int, limit: int) -> ParkedPage:
    """Up to `limit` parked events with an id above `after`."""
    table = parked_events
    query = select(table).where(table.c.id > after).order_by(table.c.id).limit(limit + 1)
    with engine.connect() as conn:
        rows = list(conn.execute(query).mappings())
    more = len(rows) > limit
    rows = rows[:limit]
    return ParkedPage(rows, int(rows[-1]["id"]) if more else None)


def parked_event(conn: Connection, parked_id: int) -> RowMapping | None:
    """One parked row, or None."""
    query = select(parked_events).where(parked_events.c.id == parked_id)
    return conn.execute(query).mappings().first()


def lock_parked_event(conn: Connection, parked_id: int) -> RowMapping | None:
    """One parked row, locked for the transaction (PostgreSQL; SQLite's write lock is whole)."""
    query = select(parked_events).where(parked_events.c.id == parked_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).mappings().first()


def remove_parked_event(conn: Connection, parked_id: int) -> None:
    """Delete the parked row (it was applied or discarded)."""
    conn.execute(delete(parked_events).where(parked_events.c.id == parked_id))


def note_failed_retry(conn: Connection, parked_id: int, error: str) -> None:
    """Keep the row with the retry's error and when it was seen."""
    conn.execute(
        update(parked_events)
        .where(parked_events.c.id == parked_id)
        .values(error=error, last_seen_at=datetime.now(UTC))
    )


def record_action(conn: Connection, action: OperatorAction) -> int:
    """Append to the audit log; the new line's id."""
    row = {**vars(action), "acted_at": datetime.now(UTC)}
    result = conn.execute(insert(parked_event_actions).returning(parked_event_actions.c.id), row)
    return int(result.scalar_one())


def recent_actions(engine: Engine, limit: int) -> list[RowMapping]:
    """The newest audit lines first."""
    table = parked_event_actions
    query = select(table).order_by(table.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(query).mappings())
