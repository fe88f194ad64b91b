"""The append-only event log of the command side, one backend module per database.

schema.py holds the tables, values and errors; store.py the EventStore; backend.py the small
interface that sqlite.py, postgres.py and core.py implement.
"""

from command_service.adapters.event_store.backend import Backend
from command_service.adapters.event_store.schema import (
    AppendHook,
    ConcurrencyError,
    EventStoreUnavailable,
    NewEvent,
    Snapshot,
    StreamAppend,
    events_table,
    metadata,
    snapshots_table,
)
from command_service.adapters.event_store.store import EventStore, backend_for

__all__ = [
    "AppendHook",
    "Backend",
    "ConcurrencyError",
    "EventStore",
    "EventStoreUnavailable",
    "NewEvent",
    "Snapshot",
    "StreamAppend",
    "backend_for",
    "events_table",
    "metadata",
    "snapshots_table",
]
