"""What every command handler shares: the command's context (correlation, causation, the
result recorder) and turning domain events into events to append with that context.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from command_service.adapters.event_codec import encode
from command_service.adapters.event_store import AppendHook, NewEvent
from command_service.domain import account as account_domain
from command_service.domain import order as domain
from shared.contract.envelope import EventEnvelope
from shared.contract.principal import Principal


class ResultRecorder(Protocol):
    """Records a command's result in the same transaction as its events (idempotency keys)."""

    def before(self, conn: Connection) -> None:
        """Under the write lock, before anything is written; raise to write nothing."""

    def record(self, conn: Connection, result: Any) -> None:
        """With the events, before the commit."""


@dataclass(frozen=True)
class CommandContext:
    """Who asked and for tracing: the verified principal (recorded in every event), the
    correlation id that spans a whole flow, command_id for this one, and the W3C traceparent
    of the request's span (None outside a request)."""

    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    command_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    recorder: ResultRecorder | None = None
    principal: Principal | None = None
    traceparent: str | None = None

    def append_hook(self, make_result: Callable[[list[EventEnvelope]], Any]) -> AppendHook | None:
        """The hook that records this command's result with its events, if one is wanted."""
        if self.recorder is None:
            return None
        return _RecordingHook(self.recorder, make_result)


@dataclass(frozen=True)
class _RecordingHook:
    recorder: ResultRecorder
    make_result: Callable[[list[EventEnvelope]], Any]

    def before(self, conn: Connection) -> None:
        self.recorder.before(conn)

    def after(self, conn: Connection, appended: list[EventEnvelope]) -> None:
        self.recorder.record(conn, self.make_result(appended))


def new_events(
    events: Sequence[domain.Event | account_domain.AccountEvent],
    ctx: CommandContext,
    fingerprint: str | None = None,
) -> list[NewEvent]:
    """Domain events -> events to append, with the command's correlation and causation ids,
    its traceparent and its principal (from the verified token only: nothing in a request
    can set it)."""
    metadata: dict[str, Any] = {"correlation_id": ctx.correlation_id}
    if ctx.traceparent is not None:
        metadata["traceparent"] = ctx.traceparent
    metadata["causation_id"] = ctx.command_id
    if ctx.principal is not None:
        metadata["principal"] = ctx.principal.to_metadata()
    if fingerprint is not None:
        metadata["command_fingerprint"] = fingerprint
    result = []
    for event in events:
        event_type, schema_version, data = encode(event)
        result.append(NewEvent(event_type, data, dict(metadata), schema_version))
    return result
