"""VersionWaits on a real SQLite file: waiters wake on another connection's commit, and all of
them are served by one read per commit; the cap on waiters, and rows the caller may not see."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, text

from query_service.read_model.changes import (
    RowWait,
    TooManyWaiters,
    VersionWaits,
    WaiterSlots,
    wait_for_version,
)
from shared.infra.db import create_database_engine


class CountingReader:
    """Reads row versions from the test table and counts its calls and the ids asked for."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, conn: Connection, row_ids: Collection[str]) -> dict[str, int]:
        self.calls.append(sorted(row_ids))
        rows = conn.execute(text("SELECT id, version FROM versions")).all()
        return {row_id: version for row_id, version in rows if row_id in row_ids}


def _engine(path: Path) -> Engine:
    engine = create_database_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE IF NOT EXISTS versions (id TEXT PRIMARY KEY, version INTEGER)")
        )
    return engine


def _project(engine: Engine, row_id: str, version: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT OR REPLACE INTO versions VALUES (:id, :v)"), {"id": row_id, "v": version}
        )


def test_waiters_wake_on_commits_with_one_read_per_commit(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "read.db")
    # The "projector": its own engine, as it would be in its own process.
    projector = _engine(tmp_path / "read.db")
    reader = CountingReader()
    waits = VersionWaits(engine, reader)
    ids = [f"o-{n}" for n in range(6)]
    results: dict[str, bool] = {}

    def wait(row_id: str) -> None:
        results[row_id] = waits.wait(row_id, 2, max_wait_s=30)

    clients = [threading.Thread(target=wait, args=(row_id,)) for row_id in ids]
    for client in clients:
        client.start()
    # Each client's own first check, all before any row exists.
    for _ in range(3000):
        if len(reader.calls) >= len(ids):
            break
        threading.Event().wait(0.01)
    initial_checks = len(reader.calls)
    for version in (1, 2):
        with projector.begin() as conn:
            for row_id in ids:
                conn.execute(
                    text("INSERT OR REPLACE INTO versions VALUES (:id, :v)"),
                    {"id": row_id, "v": version},
                )
    for client in clients:
        client.join(timeout=30)

    assert results == {row_id: True for row_id in ids}
    # Two commits: at most two batched reads, each asking for every waiting row at once.
    batched = reader.calls[initial_checks:]
    assert 1 <= len(batched) <= 2
    assert batched[0] == ids
    projector.dispose()
    engine.dispose()


def test_a_waiter_is_not_woken_by_a_commit_below_its_version(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "read.db")
    projector = _engine(tmp_path / "read.db")
    waits = VersionWaits(engine, CountingReader())
    outcome: list[bool] = []
    waiter = threading.Thread(target=lambda: outcome.append(waits.wait("o-1", 3, 0.5)))
    waiter.start()
    _project(projector, "o-1", 1)
    _project(projector, "o-1", 2)
    waiter.join()
    assert outcome == [False]
    _project(projector, "o-1", 3)
    assert waits.wait("o-1", 3, max_wait_s=0.05)
    projector.dispose()
    engine.dispose()


def test_without_a_commit_only_the_first_check_runs(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "read.db")
    reader = CountingReader()
    waits = VersionWaits(engine, reader)
    assert not waits.wait("o-1", 1, max_wait_s=0.3)
    # Not polled on a timer: SQLite's data_version did not move, so nothing was re-read.
    assert reader.calls == [["o-1"]]
    engine.dispose()


def test_the_watcher_thread_stops_when_nobody_waits(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "read.db")
    waits = VersionWaits(engine, CountingReader())
    assert not waits.wait("o-1", 1, max_wait_s=0.05)
    watcher = waits._watcher
    if watcher is not None:
        watcher.join(timeout=5)
        assert not watcher.is_alive()
    _project(engine, "o-1", 1)
    assert waits.wait("o-1", 1, max_wait_s=0.05)
    engine.dispose()


# --- the cap on waiters, and rows the caller may not see -----------------------------------


def test_waiter_slots_refuse_beyond_their_size_and_free_on_leaving() -> None:
    slots = WaiterSlots(2)
    with slots.hold(), slots.hold():
        assert slots.taken == 2
        with pytest.raises(TooManyWaiters), slots.hold():
            pass
        assert slots.taken == 2  # the refused one took nothing
    assert slots.taken == 0
    with slots.hold(), slots.hold():  # both were given back
        pass


def _waiting(
    engine: Engine, slots: WaiterSlots, row: dict[str, Any] | None, max_wait_s: float
) -> tuple[tuple[dict[str, Any] | None, bool], float]:
    """wait_for_version for a caller who sees c-1's rows: (its answer, seconds it took)."""
    waits = VersionWaits(engine, CountingReader())
    wanted = RowWait("o-1", 2, max_wait_s, visible=lambda customer_id: customer_id == "c-1")
    started = time.monotonic()
    found = wait_for_version(waits, slots, wanted, lambda: row, lambda found: found)
    return found, time.monotonic() - started


def test_a_row_already_there_is_answered_without_a_slot(tmp_path: Path) -> None:
    engine = _engine(tmp_path / "read.db")
    row = {"customer_id": "c-1", "version": 2}
    full = WaiterSlots(1)
    with full.hold():
        assert _waiting(engine, full, row, 5)[0] == (row, True)
        with pytest.raises(TooManyWaiters):
            _waiting(engine, full, {"customer_id": "c-1", "version": 1}, 5)
    engine.dispose()


def test_a_row_the_caller_may_not_see_answers_as_missing_after_the_whole_wait(
    tmp_path: Path,
) -> None:
    engine = _engine(tmp_path / "read.db")
    _project(engine, "o-1", 2)  # there, at the version, but another customer's
    others = {"customer_id": "c-2", "version": 2}

    hidden, hidden_s = _waiting(engine, WaiterSlots(1), others, 0.3)
    missing, missing_s = _waiting(engine, WaiterSlots(1), None, 0.3)

    assert hidden == missing == (None, False)
    assert hidden_s >= 0.3 and missing_s >= 0.3
    engine.dispose()
