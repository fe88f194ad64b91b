"""How the client's arguments become URL paths and query parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote


def segment(identifier: str) -> str:
    """An id as one URL path segment (a "/" in it cannot reach another route)."""
    return quote(identifier, safe="")


def as_of_params(version: int | None, moment: datetime | None) -> dict[str, Any]:
    """The query of a read as of a version or a moment (None leaves a parameter out)."""
    return {
        "as_of_version": version,
        "as_of": moment.isoformat() if moment is not None else None,
    }


def listing_params(
    status: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    limit: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    """The query of an order listing (None leaves a parameter out)."""
    return {
        "status": status,
        "created_after": created_after.isoformat() if created_after else None,
        "created_before": created_before.isoformat() if created_before else None,
        "limit": limit,
        "cursor": cursor,
    }
