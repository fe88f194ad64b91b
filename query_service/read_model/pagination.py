"""Opaque cursors for keyset pagination: order listings, newest first over (created_at,
order_id), and account statements, oldest first over the version.

A cursor is base64url (unpadded) of a small JSON object naming the last row of a page, so
rows inserted meanwhile never shift a page and deep pages cost the same as the first. The two
kinds have different keys, so one is never mistaken for the other.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from query_service.projection.events import is_identifier
from shared.contract.envelope import format_timestamp, parse_timestamp

CURSOR_FORMAT_VERSION = 1
MAX_CURSOR_LENGTH = 512


class InvalidCursor(ValueError):
    """A token that is not a cursor this service issued."""


@dataclass(frozen=True)
class Cursor:
    """The sort key of the last row of a page: the next page starts strictly after it."""

    created_at: datetime
    order_id: str


@dataclass(frozen=True)
class StatementCursor:
    """The version of the last statement line of a page: the next page starts after it."""

    version: int


def encode_cursor(cursor: Cursor) -> str:
    """Cursor -> opaque token."""
    return _encode({"t": format_timestamp(cursor.created_at), "id": cursor.order_id})


def decode_cursor(token: str) -> Cursor:
    """Opaque token -> cursor, or InvalidCursor."""
    payload = _decode(token)
    try:
        order_id = payload["id"]
        if not isinstance(order_id, str) or not is_identifier(order_id):
            raise InvalidCursor("cursor has no valid order id")
        return Cursor(parse_timestamp(payload["t"]), order_id)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InvalidCursor(f"cursor cannot be read: {exc}") from exc


def encode_statement_cursor(cursor: StatementCursor) -> str:
    """Statement cursor -> opaque token."""
    return _encode({"sv": cursor.version})


def decode_statement_cursor(token: str) -> StatementCursor:
    """Opaque token -> statement cursor, or InvalidCursor."""
    version = _decode(token).get("sv")
    if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**31:
        raise InvalidCursor("cursor has no valid statement version")
    return StatementCursor(version)


def _encode(fields: dict[str, Any]) -> str:
    raw = json.dumps({"v": CURSOR_FORMAT_VERSION, **fields}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> dict[str, Any]:
    if not token or len(token) > MAX_CURSOR_LENGTH:
        raise InvalidCursor("cursor is empty or too long")
    try:
        payload = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor(f"cursor cannot be read: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("v") != CURSOR_FORMAT_VERSION:
        raise InvalidCursor("unknown cursor format")
    return payload
