"""The audit index in PostgreSQL full-text search (when the read model is on PostgreSQL: the
console's own tables in that database, never the services')."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import text

from ops.console.search.index import AuditIndex, IndexedEvent, event_row


class PostgresAuditIndex(AuditIndex):
    """console_events with a generated tsvector ('simple': ids and codes are not stemmed)."""

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))  # several consoles race
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS console_events (position BIGINT PRIMARY KEY, "
                    "event_id TEXT NOT NULL, stream_id TEXT NOT NULL, type TEXT NOT NULL, "
                    "version INTEGER NOT NULL, occurred_at TEXT NOT NULL, envelope TEXT NOT NULL, "
                    "words TEXT NOT NULL, document tsvector GENERATED ALWAYS AS (to_tsvector("
                    "'simple', event_id || ' ' || stream_id || ' ' || type || ' ' || words)) "
                    "STORED)"
                )
            )
            conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_console_events_document "
                    "ON console_events USING GIN (document)"
                )
            )
            conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_console_events_stream "
                    "ON console_events (stream_id, version)"
                )
            )
            conn.execute(  # the stream page links each event to the log filtered by its id
                text(
                    "CREATE INDEX IF NOT EXISTS ix_console_events_event_id "
                    "ON console_events (event_id)"
                )
            )
            conn.execute(
                text("CREATE TABLE IF NOT EXISTS console_index_state (position BIGINT NOT NULL)")
            )
            if conn.execute(text("SELECT count(*) FROM console_index_state")).scalar() == 0:
                conn.execute(text("INSERT INTO console_index_state VALUES (0)"))

    def add(self, envelopes: Iterable[dict[str, Any]], next_after: int) -> None:
        rows = [event_row(envelope) for envelope in envelopes]
        with self.engine.begin() as conn:
            if rows:
                conn.execute(
                    text(
                        "INSERT INTO console_events (position, event_id, stream_id, type, "
                        "version, occurred_at, envelope, words) VALUES (:position, :event_id, "
                        ":stream_id, :type, :version, :occurred_at, :envelope, :words) "
                        "ON CONFLICT (position) DO NOTHING"
                    ),
                    rows,
                )
            conn.execute(
                text("UPDATE console_index_state SET position = greatest(position, :p)"),
                {"p": next_after},
            )

    def search(self, query: str, limit: int) -> list[IndexedEvent]:
        if not query.split():
            return []
        sql = (
            "SELECT * FROM console_events WHERE document @@ plainto_tsquery('simple', :q) "
            "ORDER BY position DESC LIMIT :limit"
        )
        return self._events(sql, {"q": query, "limit": limit})
