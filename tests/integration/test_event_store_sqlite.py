"""What only the SQLite event store has: one database file that processes share, the write lock
file beside it, WAL, and rows written on the sqlite3 cursor (the contract is in
test_event_store.py)."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import time
from pathlib import Path

import pytest

import shared.infra.write_lock
from command_service.adapters.event_store import (
    ConcurrencyError,
    EventStore,
    EventStoreUnavailable,
    NewEvent,
)
from command_service.adapters.event_store.core import CoreBackend
from shared.infra.db import create_database_engine, write_lock, write_lock_path
from tests.integration.test_event_store import append_own_and_shared, event


def _append_in_process(url: str, start: multiprocessing.synchronize.Event, i: int) -> str:
    engine = create_database_engine(url)
    start.wait()
    try:
        EventStore(engine).append("hot", 1, [event(i)])
        return "won"
    except ConcurrencyError:
        return "lost"
    finally:
        engine.dispose()


def test_concurrent_processes_on_one_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    engine = create_database_engine(url)
    store = EventStore(engine)
    store.create_schema()
    store.append("hot", 0, [event(0)])
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(6) as pool:
        pending = [pool.apply_async(_append_in_process, (url, start, i)) for i in range(6)]
        start.set()
        outcomes = sorted(p.get(timeout=60) for p in pending)
    assert outcomes == ["lost"] * 5 + ["won"]
    assert [e.version for e in store.load_stream("hot")] == [1, 2]


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'e.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        # 2 = FULL: an acknowledged commit survives power loss, not just a process crash.
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000


def test_sqlite_cursor_path_stores_what_the_core_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SQLite append writes rows itself; they must read back (and be stored) exactly as
    # rows written through SQLAlchemy's JSON and UTCDateTime types.
    engine = create_database_engine(f"sqlite:///{tmp_path / 'events.db'}")
    store = EventStore(engine)
    store.create_schema()
    core = EventStore(engine)
    monkeypatch.setattr(core, "backend", CoreBackend())
    tricky = {"text": 'naïve ✓ "quoted"', "nested": {"list": [1, 2.5, None, True]}}
    by_cursor = store.append("a", 0, [NewEvent("Happened", tricky, {"m": "é"})])
    by_core = core.append("b", 0, [NewEvent("Happened", tricky, {"m": "é"})])
    loaded_cursor, loaded_core = store.load_stream("a")[0], store.load_stream("b")[0]
    assert loaded_cursor == by_cursor[0] and loaded_core == by_core[0]
    assert (loaded_cursor.data, loaded_cursor.metadata) == (loaded_core.data, loaded_core.metadata)
    assert loaded_cursor.occurred_at.tzinfo is not None
    with engine.connect() as conn:
        stored = conn.exec_driver_sql(
            "SELECT data, metadata, typeof(recorded_at), length(recorded_at) FROM events"
            " ORDER BY position"
        ).all()
    assert stored[0] == stored[1]


def _append_many_in_process(url: str, start: multiprocessing.synchronize.Event, i: int) -> int:
    engine = create_database_engine(url)
    store = EventStore(engine)
    start.wait()
    clashes = 0
    for n in range(25):
        clashes += append_own_and_shared(store, i, n)
    engine.dispose()
    return clashes


def test_processes_appending_at_once_get_gapless_positions(tmp_path: Path) -> None:
    # Worker processes queue on the flock next to the database, not in SQLite's busy handler.
    url = f"sqlite:///{tmp_path / 'events.db'}"
    store = EventStore(create_database_engine(url))
    store.create_schema()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Manager().Event()
    with ctx.Pool(4) as pool:
        pending = [pool.apply_async(_append_many_in_process, (url, start, i)) for i in range(4)]
        start.set()
        for result in pending:
            result.get(timeout=120)
    assert [e.position for e in store.read_all(0, 10_000)] == list(range(1, 201))
    assert [e.version for e in store.load_stream("shared")] == list(range(1, 101))
    assert Path(write_lock_path(str(tmp_path / "events.db"))).exists()


def test_a_held_write_lock_file_times_out_as_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared.infra.write_lock, "SQLITE_BUSY_TIMEOUT_MS", 200)
    database = tmp_path / "events.db"
    store = EventStore(create_database_engine(f"sqlite:///{database}"))
    store.create_schema()
    # Another open file description of the lock file: to flock, another process.
    other = os.open(write_lock_path(str(database)), os.O_RDWR)
    try:
        fcntl.flock(other, fcntl.LOCK_EX)
        started = time.monotonic()
        with pytest.raises(EventStoreUnavailable, match="database is locked"):
            store.append("o-1", 0, [event(1)])
        assert 0.2 <= time.monotonic() - started < 5
        fcntl.flock(other, fcntl.LOCK_UN)
    finally:
        os.close(other)
    assert store.append("o-1", 0, [event(1)])[0].position == 1


def _append_after_fork(url: str, done: multiprocessing.synchronize.Event) -> None:
    # Runs in a child forked while its parent held the write lock (thread lock and flock).
    EventStore(create_database_engine(url)).append("child", 0, [event(2)])
    done.set()


def test_a_child_forked_while_the_parent_holds_the_write_lock_waits_for_it(
    tmp_path: Path,
) -> None:
    # The child must neither inherit the held thread lock (it would wait forever) nor share
    # the parent's flock through the inherited descriptor (it would not wait at all).
    url = f"sqlite:///{tmp_path / 'events.db'}"
    engine = create_database_engine(url)
    store = EventStore(engine)
    store.create_schema()
    store.append("parent", 0, [event(1)])
    # SQLite itself must not be open across a fork; only our lock is held over it.
    engine.dispose()
    ctx = multiprocessing.get_context("fork")
    done = ctx.Event()
    with write_lock(engine):
        child = ctx.Process(target=_append_after_fork, args=(url, done))
        child.start()
        assert not done.wait(0.5), "the child wrote while the parent held the write lock"
    assert done.wait(30), "the child never got the write lock"
    child.join(timeout=30)
    assert child.exitcode == 0
    assert [(e.stream_id, e.position) for e in store.read_all(0, 10)] == [
        ("parent", 1),
        ("child", 2),
    ]
