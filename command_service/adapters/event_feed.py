"""The whole-log feed (GET /events) as JSON text, built from the stored rows.

The feed serves events as stored, old schema versions included (consumers upcast,
see shared/contract/upcasting.py), so nothing in a row needs interpreting. How each event's
JSON is made is the event store backend's business: SQLite splices the stored JSON text
(see event_store/sqlite.py), other databases decode and encode each row.
"""

from __future__ import annotations

from command_service.adapters.event_store import EventStore


def feed_page_json(store: EventStore, after: int, limit: int) -> str:
    """The GET /events body for up to `limit` events after position `after`."""
    events, last = store.backend.feed_events_json(store, after, limit)
    # Keys in sorted order and compact, as Flask's jsonify wrote this body before.
    has_more = "true" if len(events) == limit else "false"
    next_after = after if last is None else last
    return f'{{"events":[{",".join(events)}],"has_more":{has_more},"next_after":{next_after}}}'
