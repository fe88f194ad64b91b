"""Aggregate loading with snapshots: the latest snapshot plus the events after it.

A snapshot is taken when an append carries a stream past a multiple of SNAPSHOT_EVERY events,
so loading reads at most that many events whatever the stream's length. Snapshots are a cache:
a missing, stale or old-format one only means folding more events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from command_service.adapters.event_store import EventStore, EventStoreUnavailable, Snapshot
from shared.contract.envelope import EventEnvelope

log = logging.getLogger("command_service.snapshots")

S = TypeVar("S")


@dataclass(frozen=True)
class StateCodec(Generic[S]):
    """How one aggregate's state is folded from events and written to / read from JSON.

    `state_format` names the JSON shape; change it whenever the shape changes, and snapshots
    in the old shape are ignored (rebuilt from events) instead of misread.
    """

    state_format: str
    fold: Callable[[Iterable[EventEnvelope], S | None], S | None]
    version_of: Callable[[S], int]
    to_json: Callable[[S], dict[str, object]]
    from_json: Callable[[dict[str, object]], S]


class SnapshottingLoader(Generic[S]):
    """Loads an aggregate from its latest snapshot and later events; takes new snapshots."""

    def __init__(self, store: EventStore, codec: StateCodec[S], every: int) -> None:
        self.store = store
        self.codec = codec
        self.every = every  # 0: never snapshot, always fold the whole stream

    def load(self, stream_id: str) -> S | None:
        """The current state of the stream (None if it has no events)."""
        start: S | None = None
        after = 0
        if self.every:
            snapshot = self.store.load_snapshot(stream_id)
            if snapshot is not None and snapshot.state_format == self.codec.state_format:
                start = self.codec.from_json(snapshot.state)
                after = snapshot.version
        return self.codec.fold(self.store.load_stream(stream_id, after_version=after), start)

    def appended(self, stream_id: str, version_before: int, state: S) -> None:
        """After an append: snapshot if the stream just passed a multiple of `every` events."""
        version = self.codec.version_of(state)
        if not self.every or version // self.every == version_before // self.every:
            return
        snapshot = Snapshot(stream_id, version, self.codec.state_format, self.codec.to_json(state))
        try:
            self.store.save_snapshot(snapshot)
        except (EventStoreUnavailable, Exception) as exc:  # a cache write must not fail a command
            log.warning("snapshot not saved", extra={"stream_id": stream_id, "error": repr(exc)})
