"""Temporal queries: an aggregate as it was at a stream version or at a moment, from its events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.contract.envelope import EventEnvelope, format_timestamp


@dataclass(frozen=True)
class AsOf:
    """A point in a stream's history: up to a version, up to a moment, or both (each bound
    inclusive; with both, the state after the last event within both)."""

    version: int | None = None
    moment: datetime | None = None

    def events(self, stream: Iterable[EventEnvelope]) -> list[EventEnvelope]:
        """The events of the stream that had happened at this point."""
        return [e for e in stream if self._includes(e)]

    def describe(self) -> str:
        """For messages: "version 3", "2026-11-26T10:00:00.000000Z", or both joined by "and"."""
        parts = [] if self.version is None else [f"version {self.version}"]
        if self.moment is not None:
            parts.append(format_timestamp(self.moment))
        return " and ".join(parts)

    def _includes(self, event: EventEnvelope) -> bool:
        within_version = self.version is None or event.version <= self.version
        return within_version and (self.moment is None or event.occurred_at <= self.moment)


class NotAtThatPoint(Exception):
    """The stream exists but had no such version, or no events yet, at the point asked for."""

    def __init__(self, kind: str, identifier: str, as_of: AsOf, current_version: int) -> None:
        super().__init__(
            f"{kind} {identifier!r} did not exist at {as_of.describe()} "
            f"(it is now at version {current_version})"
        )
        self.kind = kind
        self.identifier = identifier
        self.as_of = as_of
        self.current_version = current_version


def state_events(
    kind: str, identifier: str, stream: list[EventEnvelope], as_of: AsOf
) -> list[EventEnvelope]:
    """The events to fold for the state at `as_of`; NotAtThatPoint if there is no such state."""
    current = stream[-1].version if stream else 0
    events = as_of.events(stream)
    if not events or (as_of.version is not None and as_of.version > current):
        raise NotAtThatPoint(kind, identifier, as_of, current)
    return events
