"""The group committer's queue and hand-over, with a batch writer of the test's own (no DB)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from command_service.adapters.event_store.group_commit import AppendRequest, GroupCommitter
from devtools.waiting import wait_until
from shared.contract.envelope import EventEnvelope

Take = Callable[[], list[AppendRequest]]


def request(name: str) -> AppendRequest:
    return AppendRequest([], None, datetime.now(UTC), name)


def stored(name: str) -> list[EventEnvelope]:
    return [
        EventEnvelope(
            event_id=f"e-{name}",
            type="Written",
            stream_id=name,
            version=1,
            position=1,
            occurred_at=datetime.now(UTC),
            schema_version=1,
            data={},
            metadata={},
        )
    ]


class GatedWriter:
    """Writes each batch it takes, once the test opens the gate; remembers the batches."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.batches: list[list[str]] = []
        self.fail_before_take = 0

    def __call__(self, take: Take) -> None:
        self.gate.wait(10)
        if self.fail_before_take:
            self.fail_before_take -= 1
            raise TimeoutError("no write lock")
        batch = take()
        self.batches.append([r.prepared for r in batch])
        for r in batch:
            r.appended = stored(r.prepared)


def submit_in_thread(committer: GroupCommitter, req: AppendRequest, out: dict[str, object]) -> None:
    def run() -> None:
        try:
            out[req.prepared] = committer.submit(req)
        except Exception as exc:
            out[req.prepared] = exc

    threading.Thread(target=run, daemon=True).start()


def test_requests_queued_behind_a_leader_form_the_next_batch_in_order() -> None:
    writer = GatedWriter()
    committer = GroupCommitter(writer, max_batch=3)
    out: dict[str, object] = {}
    for count, name in enumerate("abcde", start=1):
        submit_in_thread(committer, request(name), out)
        wait_until(lambda n=count: committer.waiting == n, 5)  # type: ignore[misc]
    writer.gate.set()
    wait_until(lambda: len(out) == 5, 5)
    # The leader takes up to max_batch, its own first; the next in line leads the rest.
    assert writer.batches == [["a", "b", "c"], ["d", "e"]]
    assert {name: [e.stream_id for e in v] for name, v in out.items()} == {  # type: ignore[attr-defined]
        n: [n] for n in "abcde"
    }
    assert (committer.stats.batches, committer.stats.requests) == (2, 5)
    assert committer.waiting == 0


def test_a_leader_failing_before_it_takes_fails_alone_and_hands_over() -> None:
    writer = GatedWriter()
    writer.fail_before_take = 1
    committer = GroupCommitter(writer)
    out: dict[str, object] = {}
    for count, name in enumerate("xyz", start=1):
        submit_in_thread(committer, request(name), out)
        wait_until(lambda n=count: committer.waiting == n, 5)  # type: ignore[misc]
    writer.gate.set()
    wait_until(lambda: len(out) == 3, 5)
    assert isinstance(out["x"], TimeoutError)
    assert writer.batches == [["y", "z"]]
    assert not isinstance(out["y"], Exception) and not isinstance(out["z"], Exception)


def test_a_batch_that_raises_fails_every_request_in_it() -> None:
    def failing(take: Take) -> None:
        for r in take():
            r.appended = stored(r.prepared)
        raise OSError("commit failed")

    committer = GroupCommitter(failing)
    with pytest.raises(OSError, match="commit failed"):
        committer.submit(request("only"))
    assert committer.waiting == 0
    with pytest.raises(ValueError):
        GroupCommitter(failing, max_batch=0)
