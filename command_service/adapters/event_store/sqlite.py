"""SQLite on the sqlite3 module: appends and the feed go straight to its cursor.

SQLAlchemy's per-statement work was more than half of an append's CPU on SQLite, so the append's
SELECT and INSERT run on the driver with the rows serialized here exactly as SQLAlchemy's JSON
and UTCDateTime types bind them (the same JSON and DATETIME text): rows read back the same
whichever path wrote them. The feed splices that stored JSON text into the page as is, since
decoding and encoding it again, one EventEnvelope per row, was most of the feed's cost.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, OperationalError

from command_service.adapters.event_store.backend import (
    Backend,
    envelope_json,
    number_events,
    unavailable,
)
from command_service.adapters.event_store.schema import StreamAppend
from shared.contract.envelope import EventEnvelope
from shared.infra.db import sqlite_datetime_text

if TYPE_CHECKING:
    from command_service.adapters.event_store.store import EventStore

# Each event's data, metadata and recorded_at as the TEXT stored for them.
SerializedRows = list[tuple[str, str, str]]

# The log's head and one stream's version, in one round trip (core.py's, in qmark style).
_HEAD_AND_VERSION = (
    "SELECT (SELECT max(position) FROM events),"
    " (SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = ?)"
)
_INSERT = (
    "INSERT INTO events (position, event_id, stream_id, stream_version, event_type,"
    " schema_version, data, metadata, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# occurred_at straight from the DATETIME text both append paths write, 'YYYY-MM-DD HH:MM:SS.ffffff'
# (see shared.infra.db.sqlite_datetime_text). A row with another shape there, or data or metadata
# not stored as TEXT, gets NULL instead and is read through the decoding path.
_FEED_PAGE = (
    "SELECT data, event_id, metadata,"
    " CASE WHEN recorded_at GLOB '[1-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
    " [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]'"
    " AND typeof(data) = 'text' AND typeof(metadata) = 'text'"
    " THEN substr(recorded_at, 1, 10) || 'T' || substr(recorded_at, 12) || 'Z' END,"
    " position, schema_version, stream_id, event_type, stream_version"
    " FROM events WHERE position > ? ORDER BY position LIMIT ?"
)


class SQLiteBackend(Backend[SerializedRows]):
    """Appends and the feed on the sqlite3 cursor, in the row format SQLAlchemy uses."""

    # Statements sent to the driver raise its own errors, unwrapped by SQLAlchemy.
    integrity_errors: tuple[type[Exception], ...] = (IntegrityError, sqlite3.IntegrityError)
    unavailable_errors: tuple[type[Exception], ...] = (OperationalError, sqlite3.OperationalError)

    def prepare(self, appends: Sequence[StreamAppend], recorded_at: datetime) -> SerializedRows:
        """Each event's data, metadata and recorded_at as SQLAlchemy would bind them."""
        # What SQLAlchemy's JSON and UTCDateTime bind on SQLite: json.dumps and its
        # DATETIME text, so rows read back alike whichever path wrote them.
        recorded = sqlite_datetime_text(recorded_at)
        return [
            (json.dumps(new.data), json.dumps(new.metadata), recorded)
            for append in appends
            for new in append.events
        ]

    def lock_for_append(self, conn: Connection) -> None:
        """Nothing more to take: BEGIN IMMEDIATE already holds SQLite's single write lock."""

    @contextmanager
    def savepoint(self, conn: Connection) -> Iterator[None]:
        """SAVEPOINT on the driver, which runs the transaction (see lock_for_append)."""
        driver: Any = conn.connection.driver_connection
        driver.execute("SAVEPOINT batch_request")
        try:
            yield
        except BaseException:
            if driver.in_transaction:  # SQLite ends the transaction itself after some errors
                driver.execute("ROLLBACK TO batch_request")
                driver.execute("RELEASE batch_request")
            raise
        driver.execute("RELEASE batch_request")

    def insert_events(
        self,
        conn: Connection,
        appends: Sequence[StreamAppend],
        recorded_at: datetime,
        prepared: SerializedRows,
    ) -> list[EventEnvelope]:
        """Check each stream's version, then insert its events numbered after the log's head."""
        driver: Any = conn.connection.driver_connection

        def head_and_version(stream_id: str) -> tuple[Any, Any]:
            row: tuple[Any, Any] = driver.execute(_HEAD_AND_VERSION, (stream_id,)).fetchone()
            return row

        appended = number_events(appends, recorded_at, head_and_version)
        rows = [
            (e.position, e.event_id, e.stream_id, e.version, e.type, e.schema_version, *encoded)
            for e, encoded in zip(appended, prepared, strict=True)
        ]
        if len(rows) == 1:
            driver.execute(_INSERT, rows[0])
        else:
            driver.executemany(_INSERT, rows)
        return appended

    def feed_events_json(
        self, store: EventStore, after: int, limit: int
    ) -> tuple[list[str], int | None]:
        """The stored JSON text spliced into each event; rows in another shape are decoded."""
        try:
            with store.engine.connect() as conn:
                driver: Any = conn.connection.driver_connection
                rows = driver.execute(_FEED_PAGE, (after, limit)).fetchall()
        except self.unavailable_errors as exc:
            raise unavailable(exc) from exc
        quote = encode_basestring_ascii
        # Keys sorted, strings ASCII-escaped, as EventEnvelope.to_dict through jsonify had them.
        events = [
            f'{{"data":{data},"event_id":{quote(event_id)},"metadata":{meta},'
            f'"occurred_at":"{occurred}","position":{position},"schema_version":{schema},'
            f'"stream_id":{quote(stream)},"type":{quote(kind)},"version":{version}}}'
            if occurred is not None
            else _decoded_event_json(store, position)
            for data, event_id, meta, occurred, position, schema, stream, kind, version in rows
        ]
        return events, rows[-1][4] if rows else None


def _decoded_event_json(store: EventStore, position: int) -> str:
    # A row some other writer stored in another shape: read it as every other reader does.
    return envelope_json(store.read_all(position - 1, 1)[0])
