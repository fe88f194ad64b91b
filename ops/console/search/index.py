"""What both backends share: the indexed events' table, its position, the filtered log pages."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text


@dataclass(frozen=True)
class IndexedEvent:
    """One event of the log as the console shows it (the envelope kept whole as JSON)."""

    position: int
    event_id: str
    stream_id: str
    type: str
    version: int
    occurred_at: str
    envelope: dict[str, Any]

    @property
    def principal(self) -> str | None:
        """Who issued the command (metadata.principal.sub), if recorded."""
        who = (self.envelope.get("metadata") or {}).get("principal") or {}
        return who.get("sub") if isinstance(who, dict) else None

    @property
    def correlation_id(self) -> str | None:
        """The command's correlation id, if recorded."""
        value = (self.envelope.get("metadata") or {}).get("correlation_id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class EventFilter:
    """Filters of an event log page; times are ISO 8601 UTC strings, compared as text."""

    event_type: str | None = None
    stream_id: str | None = None
    event_id: str | None = None
    since: str | None = None
    until: str | None = None
    newest_first: bool = True


def searchable_text(envelope: dict[str, Any]) -> str:
    """Every scalar of the payload and metadata, as words: 'p-7 2 1250 alice ...'."""
    return " ".join(_scalars([envelope.get("data"), envelope.get("metadata")]))


def _scalars(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    elif value is not None:
        yield str(value)


def event_row(envelope: dict[str, Any]) -> dict[str, Any]:
    """The stored columns of one GET /events envelope."""
    return {
        "position": int(envelope["position"]),
        "event_id": str(envelope.get("event_id", "")),
        "stream_id": str(envelope.get("stream_id", "")),
        "type": str(envelope.get("type", "")),
        "version": int(envelope.get("version") or 0),
        "occurred_at": str(envelope.get("occurred_at", "")),
        "envelope": json.dumps(envelope, sort_keys=True),
        "words": searchable_text(envelope),
    }


class AuditIndex:
    """The backend-neutral part; subclasses create the schema, add rows and search."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.create_schema()

    def create_schema(self) -> None:
        """Create the tables if missing."""
        raise NotImplementedError

    def add(self, envelopes: Iterable[dict[str, Any]], next_after: int) -> None:
        """Index events and remember the log position read up to, in one transaction."""
        raise NotImplementedError

    def search(self, query: str, limit: int) -> list[IndexedEvent]:
        """The events matching every word of `query`, newest first."""
        raise NotImplementedError

    def position(self) -> int:
        """The log position indexed up to (0: nothing yet)."""
        with self.engine.connect() as conn:
            value = conn.execute(text("SELECT position FROM console_index_state")).scalar()
        return int(value or 0)

    def page(self, filters: EventFilter, cursor: int | None, limit: int) -> list[IndexedEvent]:
        """Up to `limit` events matching `filters`, after (or before, newest first) `cursor`."""
        conditions: list[str] = []
        params: dict[str, Any] = {"limit": limit}
        for i, (column, value, op) in enumerate(
            (
                ("type", filters.event_type, "="),
                ("stream_id", filters.stream_id, "="),
                ("event_id", filters.event_id, "="),
                ("occurred_at", filters.since, ">="),
                ("occurred_at", filters.until, "<"),
            )
        ):
            if value:
                conditions.append(f"{column} {op} :p{i}")
                params[f"p{i}"] = value
        if cursor is not None:
            conditions.append(
                "position < :cursor" if filters.newest_first else "position > :cursor"
            )
            params["cursor"] = cursor
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        order = "DESC" if filters.newest_first else "ASC"
        sql = f"SELECT * FROM console_events {where} ORDER BY position {order} LIMIT :limit"
        return self._events(sql, params)

    def stream(self, stream_id: str) -> list[IndexedEvent]:
        """One stream's events in version order."""
        sql = "SELECT * FROM console_events WHERE stream_id = :s ORDER BY version"
        return self._events(sql, {"s": stream_id})

    def event_types(self) -> list[str]:
        """Every event type seen, for the filter's choices."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT DISTINCT type FROM console_events ORDER BY type"))
            return [str(row[0]) for row in rows]

    def _events(self, sql: str, params: dict[str, Any]) -> list[IndexedEvent]:
        with self.engine.connect() as conn:
            rows = conn.execute(text(sql), params).mappings().all()
        return [
            IndexedEvent(
                position=int(row["position"]),
                event_id=row["event_id"],
                stream_id=row["stream_id"],
                type=row["type"],
                version=int(row["version"]),
                occurred_at=row["occurred_at"],
                envelope=json.loads(row["envelope"]),
            )
            for row in rows
        ]
