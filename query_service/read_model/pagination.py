"""Cursors for keyset pagination: order listings, newest first over (created_at, order_id),
and account statements, oldest first over the version.

A cursor names the last row of a page, so rows inserted meanwhile never shift a page and deep
pages cost the same as the first. It is opaque to clients (pass next_cursor back as it is) but
has a fixed shape, stated as a pattern in the OpenAPI document: every string of that shape is a
position, so the service accepts any cursor that matches, issued by it or not.

- orders: `<created_at in microseconds since 1970 UTC>~<order_id>`, e.g. `1764633600000000~o-1`;
- statements: the version of the last line, e.g. `100` (0: before the first line), without
  leading zeros.

The two shapes never match each other, so one kind is never mistaken for the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_VERSION = 2**31 - 1  # the read model's version columns are 32-bit


def _decimal_up_to(maximum: int) -> str:
    """A regex alternation for the decimal numbers 0..maximum (maximum >= 1), without leading
    zeros: 0, the numbers with fewer digits, then those of its length below it, then itself."""
    digits = str(maximum)
    parts = ["0"] if len(digits) == 1 else ["0", f"[1-9][0-9]{{0,{len(digits) - 2}}}"]
    for i, digit in enumerate(digits):
        lowest, below = (1 if i == 0 else 0), int(digit) - 1
        if below >= lowest:
            rest = len(digits) - i - 1
            parts.append(digits[:i] + f"[{lowest}-{below}]" + (f"[0-9]{{{rest}}}" if rest else ""))
    return "|".join([*parts, digits])


# Up to 16 digits of microseconds reaches the year 2286.
ORDER_CURSOR_PATTERN = r"^[0-9]{1,16}~[A-Za-z0-9._:-]{1,64}$"
STATEMENT_CURSOR_PATTERN = f"^(?:{_decimal_up_to(MAX_VERSION)})$"
_ORDER_CURSOR = re.compile(ORDER_CURSOR_PATTERN.replace("$", r"\Z"))
_STATEMENT_CURSOR = re.compile(STATEMENT_CURSOR_PATTERN.replace("$", r"\Z"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidCursor(ValueError):
    """A token that does not have the shape of a cursor (of this kind)."""


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
    """Cursor -> token."""
    return f"{(cursor.created_at - _EPOCH) // timedelta(microseconds=1)}~{cursor.order_id}"


def decode_cursor(token: str) -> Cursor:
    """Token -> cursor, or InvalidCursor if it does not have the shape."""
    if not _ORDER_CURSOR.match(token):
        raise InvalidCursor("not <microseconds>~<order id>")
    micros, order_id = token.split("~", 1)
    return Cursor(_EPOCH + timedelta(microseconds=int(micros)), order_id)


def encode_statement_cursor(cursor: StatementCursor) -> str:
    """Statement cursor -> token."""
    return str(cursor.version)


def decode_statement_cursor(token: str) -> StatementCursor:
    """Token -> statement cursor, or InvalidCursor if it does not have the shape."""
    if not _STATEMENT_CURSOR.match(token):
        raise InvalidCursor(f"not a version from 0 to {MAX_VERSION}")
    return StatementCursor(int(token))
