"""The audit index in SQLite with FTS5 (the default: a file under $DATA_DIR/console)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from ops.console.search.index import AuditIndex, IndexedEvent, event_row


class SqliteAuditIndex(AuditIndex):
    """console_events plus an FTS5 table over its ids, type and payload words."""

    @classmethod
    def at(cls, url: str) -> SqliteAuditIndex:
        """Open (and create) the index at a sqlite URL."""
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            # The indexer writes while pages read: WAL lets readers go on.
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=5000")

        return cls(engine)

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS console_events (position INTEGER PRIMARY KEY, "
                    "event_id TEXT NOT NULL, stream_id TEXT NOT NULL, type TEXT NOT NULL, "
                    "version INTEGER NOT NULL, occurred_at TEXT NOT NULL, envelope TEXT NOT NULL)"
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
                text(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS console_events_fts USING fts5("
                    "event_id, stream_id, type, words)"
                )
            )
            conn.execute(
                text("CREATE TABLE IF NOT EXISTS console_index_state (position INTEGER NOT NULL)")
            )
            if conn.execute(text("SELECT count(*) FROM console_index_state")).scalar() == 0:
                conn.execute(text("INSERT INTO console_index_state VALUES (0)"))

    def add(self, envelopes: Iterable[dict[str, Any]], next_after: int) -> None:
        rows = [event_row(envelope) for envelope in envelopes]
        with self.engine.begin() as conn:
            for row in rows:
                inserted = conn.execute(
                    text(
                        "INSERT OR IGNORE INTO console_events VALUES (:position, :event_id, "
                        ":stream_id, :type, :version, :occurred_at, :envelope)"
                    ),
                    row,
                )
                if inserted.rowcount == 1:  # a page read twice is indexed once
                    conn.execute(
                        text(
                            "INSERT INTO console_events_fts (rowid, event_id, stream_id, type, "
                            "words) VALUES (:position, :event_id, :stream_id, :type, :words)"
                        ),
                        row,
                    )
            conn.execute(
                text("UPDATE console_index_state SET position = max(position, :p)"),
                {"p": next_after},
            )

    def search(self, query: str, limit: int) -> list[IndexedEvent]:
        match = fts5_query(query)
        if not match:
            return []
        sql = (
            "SELECT e.* FROM console_events_fts f JOIN console_events e "
            "ON e.position = f.rowid WHERE console_events_fts MATCH :q "
            "ORDER BY e.position DESC LIMIT :limit"
        )
        return self._events(sql, {"q": match, "limit": limit})


def fts5_query(query: str) -> str:
    """Each word as a quoted phrase, all required: ids like o-1001 stay one phrase, and no
    FTS5 operator in the input is ever interpreted."""
    words = [word.replace('"', '""') for word in query.split()]
    return " AND ".join(f'"{word}"' for word in words if word)
