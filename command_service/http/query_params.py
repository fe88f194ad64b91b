"""Reading what a request states besides its body: ?as_of / ?as_of_version, integer query
parameters, and the expected version (If-Match, ?expected_version, and the body)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from flask import request

from command_service.application.as_of import AsOf
from command_service.application.order_versions import ExpectedVersion
from shared.http.errors import Problem


def as_of_from_query() -> AsOf | None:
    """?as_of_version=N and/or ?as_of=<ISO 8601 time with offset>; None for "now".

    Both together are both bounds: the state after the last event at or before the version
    and at or before the time.
    """
    version = query_int("as_of_version", 0, 1) if "as_of_version" in request.args else None
    moment = _as_of_moment() if "as_of" in request.args else None
    if version is None and moment is None:
        return None
    return AsOf(version=version, moment=moment)


def _as_of_moment() -> datetime:
    raw = request.args["as_of"]
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise invalid_query_parameter(
            "as_of",
            f"as_of must be an ISO 8601 time with a UTC offset, e.g. "
            f"2026-11-26T10:00:00Z (got {raw[:100]!r}).",
            "Must be an ISO 8601 time with an offset.",
        )
    return moment


def query_int(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    bounds = f"between {low} and {high}" if high is not None else f">= {low}"
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise invalid_query_parameter(
            name,
            f"Query parameter {name!r} must be an integer {bounds} (got {raw!r}).",
            f"Must be an integer {bounds}.",
        )
    return value


def invalid_query_parameter(name: str, detail: str, message: str) -> Problem:
    """400 naming the one query parameter that is wrong."""
    return Problem(
        400,
        "invalid-query-parameter",
        "Invalid query parameter",
        detail,
        {"errors": {name: [message]}},
    )


# What the OpenAPI document's If-Match pattern says, with the empty value handled before: an
# entity tag of a version, weak or strong; the bare number too, for clients that omit quotes.
# ASCII digits only (str.isdigit would take "²", which int() then refuses).
_ENTITY_TAG = re.compile(r'(?:W/)?(?:"(?P<quoted>0*[1-9][0-9]*)"|(?P<bare>0*[1-9][0-9]*))')
# A version no existing order is at (streams start at 1): what an empty If-Match expects.
NO_VERSION = 0


def expected_version(from_body: Any) -> ExpectedVersion:
    """The expected version from If-Match, ?expected_version= and the body: each one given must
    hold, so differing ones make the command a version conflict (409), never a write."""
    candidates: set[int] = set()
    if_match = request.headers.get("If-Match")
    if if_match is not None and not if_match.strip():
        # An empty list of entity tags (RFC 9110 5.6.1): it matches no version (13.1.1).
        candidates.add(NO_VERSION)
    elif if_match is not None:
        candidates.add(_parse_version("If-Match", if_match.strip()))
    if "expected_version" in request.args:
        candidates.add(query_int("expected_version", 0, 1))
    if from_body is not None:
        candidates.add(int(from_body))
    if len(candidates) > 1:
        return frozenset(candidates)
    return next(iter(candidates), None)


def _parse_version(name: str, raw: str) -> int:
    match = _ENTITY_TAG.fullmatch(raw)
    if match is None:
        raise Problem(
            400,
            "invalid-header",
            "Invalid header",
            f'{name} must be the order version as a positive integer, e.g. "3" (got {raw!r}).',
            {"errors": {name: ["Must be a positive integer version."]}},
        )
    return int(match["quoted"] or match["bare"])
