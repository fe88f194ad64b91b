"""The console's audit index of the event log: full text over ids, types and payload fields."""

from __future__ import annotations

from sqlalchemy import create_engine

from ops.console.search.index import AuditIndex, EventFilter, IndexedEvent
from ops.console.search.postgres import PostgresAuditIndex
from ops.console.search.sqlite import SqliteAuditIndex


def open_index(url: str) -> AuditIndex:
    """SQLite FTS5 for a sqlite URL, PostgreSQL full-text search for a postgresql one."""
    if url.startswith("postgresql"):
        return PostgresAuditIndex(create_engine(url, pool_pre_ping=True))
    return SqliteAuditIndex.at(url)


__all__ = ["AuditIndex", "EventFilter", "IndexedEvent", "open_index"]
