"""Reading what a request states besides its body: ?as_of / ?as_of_version, integer query
parameters, and the expected version (If-Match, ?expected_version, or the body)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request

from command_service.application.as_of import AsOf
from shared.http.errors import Problem


def as_of_from_query() -> AsOf | None:
    """?as_of_version=N or ?as_of=<ISO 8601 time with offset> (not both); None for "now"."""
    has_version, has_moment = "as_of_version" in request.args, "as_of" in request.args
    if has_version and has_moment:
        raise invalid_query_parameter(
            "as_of",
            "Give as_of_version or as_of, not both.",
            "Not allowed together with as_of_version.",
        )
    if has_version:
        return AsOf(version=query_int("as_of_version", 0, 1))
    if has_moment:
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
        return AsOf(moment=moment)
    return None


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


def expected_version(from_body: Any) -> int | None:
    """The expected version from If-Match, ?expected_version= or the body; they must agree."""
    candidates: dict[str, int] = {}
    if_match = request.headers.get("If-Match")
    if if_match is not None:
        candidates["If-Match"] = _parse_version("If-Match", if_match.strip().removeprefix("W/"))
    if "expected_version" in request.args:
        candidates["expected_version (query)"] = query_int("expected_version", 0, 1)
    if from_body is not None:
        candidates["expected_version"] = int(from_body)
    if len(set(candidates.values())) > 1:
        raise Problem(
            400,
            "ambiguous-expected-version",
            "Conflicting expected versions",
            f"The expected version is given more than once with different values: {candidates}.",
        )
    return next(iter(candidates.values()), None)


def _parse_version(name: str, raw: str) -> int:
    text = raw.strip('"')
    if not text.isdigit() or int(text) < 1:
        raise Problem(
            400,
            "invalid-header",
            "Invalid header",
            f'{name} must be the order version as a positive integer, e.g. "3" (got {raw!r}).',
            {"errors": {name: ["Must be a positive integer version."]}},
        )
    return int(text)
