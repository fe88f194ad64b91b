"""Opaque cursors for newest-first keyset pagination over (created_at, order_id).

A cursor is base64url (unpadded) of a small JSON object naming the last row of a page, so
rows inserted meanwhile never shift a page and deep pages cost the same as the first.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from query_service.events import is_identifier
from shared.envelope import format_timestamp, parse_timestamp

CURSOR_FORMAT_VERSION = 1
MAX_CURSOR_LENGTH = 512


class InvalidCursor(ValueError):
    """A token that is not a cursor this service issued."""


@dataclass(frozen=True)
class Cursor:
    """The sort key of the last row of a page: the next page starts strictly after it."""

    created_at: datetime
    order_id: str


def encode_cursor(cursor: Cursor) -> str:
    """Cursor -> opaque token."""
    payload = {
        "v": CURSOR_FORMAT_VERSION,
        "t": format_timestamp(cursor.created_at),
        "id": cursor.order_id,
    }
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> Cursor:
    """Opaque token -> cursor, or InvalidCursor."""
    if not token or len(token) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is empty or too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        payload = json.loads(raw)
        if not isinstance(payload, dict) or payload.get("v") != CURSOR_FORMAT_VERSION:
            raise InvalidCursor("unknown cursor format")
        order_id = payload["id"]
        if not isinstance(order_id, str) or not is_identifier(order_id):
            raise InvalidCursor("cursor has no valid order id")
        return Cursor(parse_timestamp(payload["t"]), order_id)
    except InvalidCursor:
        raise
    except (binascii.Error, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidCursor(f"cursor cannot be read: {exc}") from exc
