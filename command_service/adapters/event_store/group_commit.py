"""Group commit: appends that arrive while the log is being written share the next transaction.

Leader and followers, as in LevelDB's write queue. A caller that finds no batch in progress
leads: it opens the write transaction (while it waits for the write lock, other callers queue
behind it), takes every queued request, its own first, writes them, commits once and hands
each caller its own outcome; the first request still queued then leads the next batch. A lone
caller is a batch of one and pays for nothing more than a queue entry.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from command_service.adapters.event_store.schema import AppendHook, StreamAppend
from shared.contract.envelope import EventEnvelope


@dataclass(eq=False)
class AppendRequest:
    """One caller's append, waiting for the batch that writes it, and then its outcome."""

    appends: Sequence[StreamAppend]
    hook: AppendHook | None
    recorded_at: datetime
    prepared: Any
    appended: list[EventEnvelope] | None = None
    error: BaseException | None = None
    leads: bool = False
    _wakeup: threading.Event = field(default_factory=threading.Event, repr=False)

    def outcome(self) -> list[EventEnvelope]:
        """The events as stored, or the batch's or this request's own error, raised."""
        if self.error is not None:
            raise self.error
        assert self.appended is not None, "request woken before it was written"
        return self.appended


@dataclass
class GroupCommitStats:
    """How many transactions (batches) wrote how many requests, since the store was made."""

    batches: int = 0
    requests: int = 0
    largest: int = 0

    @property
    def mean_batch(self) -> float:
        """Requests per committed-or-failed batch (0.0 before the first)."""
        return self.requests / self.batches if self.batches else 0.0


# Takes the queued batch once the writer holds the lock, writes it and sets each request's
# outcome; raising means the whole transaction rolled back.
BatchWriter = Callable[[Callable[[], list[AppendRequest]]], None]


class GroupCommitter:
    """Runs concurrent callers' appends in shared transactions, each with its own result."""

    def __init__(self, write_batch: BatchWriter, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write_batch = write_batch
        self.max_batch = max_batch
        self.stats = GroupCommitStats()
        # Told each batch's size once it committed or failed (the command API's metrics).
        self.on_batch: Callable[[int], None] | None = None
        self._reset()
        _COMMITTERS.add(self)

    def _reset(self) -> None:
        self._mutex = threading.Lock()
        self._queue: deque[AppendRequest] = deque()
        self._busy = False

    @property
    def waiting(self) -> int:
        """Requests queued and not yet taken into a batch (the leader's own included)."""
        with self._mutex:
            return len(self._queue)

    def submit(self, request: AppendRequest) -> list[EventEnvelope]:
        """Write the request in the next batch; return its events once that batch committed."""
        with self._mutex:
            self._queue.append(request)
            lead = not self._busy
            self._busy = True
        if not lead:
            request._wakeup.wait()
            if not request.leads:
                return request.outcome()
        self._lead(request)
        return request.outcome()

    def _lead(self, own: AppendRequest) -> None:
        taken: list[AppendRequest] = []

        def take() -> list[AppendRequest]:
            with self._mutex:
                count = min(self.max_batch, len(self._queue))
                taken.extend(self._queue.popleft() for _ in range(count))
            return taken

        try:
            self._write_batch(take)
        except BaseException as exc:
            # Rolled back: nothing of the batch is in the log, so no request of it succeeded.
            for request in taken:
                request.appended, request.error = None, request.error or exc
            if not taken:  # failed before taking (the lock, say): only the leader's own fails
                with self._mutex:
                    self._queue.remove(own)
                own.error = exc
        finally:
            if taken:
                self.stats.batches += 1
                self.stats.requests += len(taken)
                self.stats.largest = max(self.stats.largest, len(taken))
                if self.on_batch is not None:
                    with suppress(Exception):  # counting must not fail the batch's callers
                        self.on_batch(len(taken))
            for request in taken:
                if request is not own:
                    request._wakeup.set()
            self._hand_over()

    def _hand_over(self) -> None:
        with self._mutex:
            if not self._queue:
                self._busy = False
                return
            successor = self._queue[0]
        successor.leads = True
        successor._wakeup.set()


_COMMITTERS: weakref.WeakSet[GroupCommitter] = weakref.WeakSet()


def _fresh_committers_after_fork() -> None:
    # A batch in progress in the parent has no leader in the child: start empty and idle.
    for committer in list(_COMMITTERS):
        committer._reset()


os.register_at_fork(after_in_child=_fresh_committers_after_fork)
