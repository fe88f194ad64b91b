"""Money on the wire: integer cents inside, a decimal string with two places for people."""

from __future__ import annotations

from decimal import Decimal


def format_cents(cents: int) -> str:
    """Integer cents -> decimal string with two places (1234 -> "12.34", -5 -> "-0.05")."""
    return str(Decimal(cents).scaleb(-2))
