"""What every command route shares: the command's context from the request, and its response
(the new version as ETag, Idempotent-Replayed, Location)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from flask import Response

from command_service.application.commands import CommandContext
from command_service.http.idempotency import recorder_for
from shared.http.auth import current_principal
from shared.http.correlation import current_correlation_id
from shared.http.json_responses import json_response
from shared.http.trace_context import current_traceparent


def command_context(render: Callable[[Any], Response] | None = None) -> CommandContext:
    """The command's context: the verified caller, its correlation id and traceparent, and
    (with an Idempotency-Key) a recorder that stores the response `render` makes of the
    result, with the command's events."""
    recorder = recorder_for(render) if render is not None else None
    return CommandContext(
        correlation_id=current_correlation_id(),
        traceparent=current_traceparent(),
        recorder=recorder,
        principal=current_principal(),
    )


class CommandOutcome(Protocol):
    """What every command's result has: the stream's new version, and whether it is a replay."""

    @property
    def version(self) -> int: ...

    @property
    def replayed(self) -> bool: ...


def command_response(
    result: CommandOutcome,
    body: Mapping[str, Any],
    status: int = 200,
    location: str | None = None,
) -> Response:
    """A command's JSON result with the new version as ETag, Idempotent-Replayed on a replay,
    and Location when it created a resource (orders and accounts alike)."""
    response = versioned_response(body, result.version)
    response.status_code = status
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if location is not None:
        response.headers["Location"] = location
    return response


def versioned_response(body: Mapping[str, Any], version: int) -> Response:
    """JSON `body` with the stream's version as its ETag (send it back in If-Match)."""
    response = json_response(body)
    response.headers["ETag"] = f'"{version}"'
    return response
