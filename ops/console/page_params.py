"""Query-string parameters of console pages: a bad one is a 400 page naming it, never a 500."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import abort, request

IDENTIFIER = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")


def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    """An integer parameter within [low, high], or `default` when absent."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        abort(400, description=f"{name}: must be a whole number from {low} to {high}.")
    return int(raw)


def id_arg(name: str) -> str | None:
    """An id (order, stream, customer, event type), or None when absent."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not IDENTIFIER.match(raw):
        abort(400, description=f"{name}: letters, digits and . _ : - only, at most 80.")
    return raw


def choice_arg(name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when absent)."""
    raw = request.args.get(name, "").strip() or choices[0]
    if raw not in choices:
        abort(400, description=f"{name}: one of {', '.join(choices)}.")
    return raw


def time_arg(name: str) -> str | None:
    """An ISO 8601 time (a datetime-local form value is read as UTC), as the log writes it."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        abort(400, description=f"{name}: a time like 2026-12-01T21:30 (UTC).")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def text_arg(name: str, max_length: int) -> str:
    """Free text (a search), trimmed; too long is a 400."""
    raw = request.args.get(name, "").strip()
    if len(raw) > max_length:
        abort(400, description=f"{name}: at most {max_length} characters.")
    return raw
