"""The whole-log feed (GET /events) as JSON text, built from the stored rows.

The feed serves events as stored, old schema versions included (consumers upcast,
see shared/contract/upcasting.py), so nothing in a row needs interpreting. On SQLite, data and
metadata are TEXT holding the JSON that json.dumps wrote (SQLAlchemy's JSON type and the
append's cursor path alike), and that text is spliced into the page as is: decoding it and
encoding it again, one EventEnvelope per row, was most of the feed's cost. Other databases
take that slow path.
"""

from __future__ import annotations

import json
import sqlite3
from json.encoder import encode_basestring_ascii
from typing import Any

from sqlalchemy.exc import OperationalError

from command_service.adapters.event_store import EventStore, EventStoreUnavailable
from shared.contract.envelope import EventEnvelope

# occurred_at straight from the DATETIME text both append paths write, 'YYYY-MM-DD HH:MM:SS.ffffff'
# (see shared.infra.db.sqlite_datetime_text). A row with another shape there, or data or metadata
# not stored as TEXT, gets NULL instead and is read through the decoding path.
_SQLITE_PAGE = (
    "SELECT data, event_id, metadata,"
    " CASE WHEN recorded_at GLOB '[1-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
    " [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]'"
    " AND typeof(data) = 'text' AND typeof(metadata) = 'text'"
    " THEN substr(recorded_at, 1, 10) || 'T' || substr(recorded_at, 12) || 'Z' END,"
    " position, schema_version, stream_id, event_type, stream_version"
    " FROM events WHERE position > ? ORDER BY position LIMIT ?"
)


def feed_page_json(store: EventStore, after: int, limit: int) -> str:
    """The GET /events body for up to `limit` events after position `after`."""
    engine = store.engine
    if engine.dialect.name == "sqlite" and engine.dialect.driver == "pysqlite":
        events, last = _sqlite_events_json(store, after, limit)
    else:
        envelopes = store.read_all(after, limit)
        events = [_envelope_json(e) for e in envelopes]
        last = envelopes[-1].position if envelopes else None
    # Keys in sorted order and compact, as Flask's jsonify wrote this body before.
    has_more = "true" if len(events) == limit else "false"
    next_after = after if last is None else last
    return f'{{"events":[{",".join(events)}],"has_more":{has_more},"next_after":{next_after}}}'


def _sqlite_events_json(store: EventStore, after: int, limit: int) -> tuple[list[str], int | None]:
    try:
        with store.engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            rows = driver.execute(_SQLITE_PAGE, (after, limit)).fetchall()
    except OperationalError as exc:
        raise EventStoreUnavailable(str(exc.orig)) from exc
    except sqlite3.OperationalError as exc:
        raise EventStoreUnavailable(str(exc)) from exc
    quote = encode_basestring_ascii
    # Keys sorted, strings ASCII-escaped, as EventEnvelope.to_dict through jsonify had them.
    events = [
        f'{{"data":{data},"event_id":{quote(event_id)},"metadata":{meta},'
        f'"occurred_at":"{occurred}","position":{position},"schema_version":{schema},'
        f'"stream_id":{quote(stream_id)},"type":{quote(event_type)},"version":{version}}}'
        if occurred is not None
        else _slow_event_json(store, position)
        for data, event_id, meta, occurred, position, schema, stream_id, event_type, version in rows
    ]
    return events, rows[-1][4] if rows else None


def _slow_event_json(store: EventStore, position: int) -> str:
    # A row some other writer stored in another shape: read it as every other reader does.
    return _envelope_json(store.read_all(position - 1, 1)[0])


def _envelope_json(envelope: EventEnvelope) -> str:
    return json.dumps(envelope.to_dict(), ensure_ascii=True, sort_keys=True, separators=(",", ":"))
