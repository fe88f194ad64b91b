"""One event-store suite, run against SQLite (always) and PostgreSQL (when its server is here)."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
import os
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, text

import shared.infra.db
from command_service.adapters.event_feed import feed_page_json
from command_service.adapters.event_store import (
    ConcurrencyError,
    EventStore,
    EventStoreUnavailable,
    NewEvent,
    StreamAppend,
    events_table,
)
from shared.contract.envelope import EventEnvelope
from shared.infra.db import create_database_engine, write_lock, write_lock_path


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'events.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    created = create_database_engine(url)
    EventStore(created).create_schema()
    yield created
    if request.param == "postgresql":
        with created.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS events"))
    created.dispose()


@pytest.fixture
def store(engine: Engine) -> EventStore:
    return EventStore(engine)


def event(n: int, kind: str = "Happened") -> NewEvent:
    return NewEvent(kind, {"n": n, "amount": "12.50"}, {"correlation_id": f"c-{n}"})


def test_append_and_read_stream(store: EventStore) -> None:
    appended = store.append("o-1", 0, [event(1), event(2)])
    assert [(e.version, e.position) for e in appended] == [(1, 1), (2, 2)]
    loaded = store.load_stream("o-1")
    assert [e.data["n"] for e in loaded] == [1, 2]
    assert loaded[0].metadata == {"correlation_id": "c-1"}
    assert loaded[0].occurred_at.tzinfo is not None
    assert loaded == appended
    assert store.stream_version("o-1") == 2
    assert store.stream_version("nope") == 0
    assert store.load_stream("nope") == []


def test_positions_are_global_gapless_and_in_order(store: EventStore) -> None:
    store.append("a", 0, [event(1)])
    store.append("b", 0, [event(2), event(3)])
    store.append("a", 1, [event(4)])
    log = store.read_all(0, 100)
    assert [e.position for e in log] == [1, 2, 3, 4]
    assert [(e.stream_id, e.version) for e in log] == [("a", 1), ("b", 1), ("b", 2), ("a", 2)]
    assert [e.position for e in store.read_all(2, 1)] == [3]
    assert store.head_position() == 4


def test_expected_version_conflict_writes_nothing(store: EventStore) -> None:
    store.append("o-1", 0, [event(1)])
    with pytest.raises(ConcurrencyError) as err:
        store.append("o-1", 0, [event(2), event(3)])
    assert (err.value.expected, err.value.actual) == (0, 1)
    assert store.head_position() == 1
    with pytest.raises(ConcurrencyError):
        store.append("o-1", 5, [event(2)])
    assert [e.version for e in store.load_stream("o-1")] == [1]


def test_multi_stream_append_is_all_or_nothing(store: EventStore) -> None:
    store.append("acct", 0, [event(1)])
    with pytest.raises(ConcurrencyError):
        store.append_streams(
            [StreamAppend("order", 0, [event(2)]), StreamAppend("acct", 0, [event(3)])]
        )
    assert store.load_stream("order") == []
    assert store.head_position() == 1
    written = store.append_streams(
        [StreamAppend("order", 0, [event(2)]), StreamAppend("acct", 1, [event(3)])]
    )
    assert [(e.stream_id, e.version, e.position) for e in written] == [
        ("order", 1, 2),
        ("acct", 2, 3),
    ]


def test_duplicate_event_id_is_rejected(store: EventStore) -> None:
    first = event(1)
    store.append("a", 0, [first])
    with pytest.raises(ConcurrencyError):
        store.append("b", 0, [first])
    assert store.head_position() == 1


def test_concurrent_appends_at_same_version_exactly_one_wins(store: EventStore) -> None:
    store.append("hot", 0, [event(0)])
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def contender(i: int) -> None:
        barrier.wait()
        try:
            store.append("hot", 1, [event(100 + i), event(200 + i)])
            result = "won"
        except ConcurrencyError:
            result = "lost"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]
    versions = [e.version for e in store.load_stream("hot")]
    assert versions == [1, 2, 3]
    assert [e.position for e in store.read_all(0, 100)] == [1, 2, 3]


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
    monkeypatch.setattr(core, "_sqlite_cursor", False)
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


def _append_own_and_shared(store: EventStore, i: int, n: int) -> int:
    """Event n to writer i's own stream, then to the shared one, retrying until it lands;
    returns how many times the shared append clashed."""
    store.append(f"own-{i}", n, [event(n)])
    clashes = 0
    while True:
        try:
            store.append("shared", store.stream_version("shared"), [event(n)])
            return clashes
        except ConcurrencyError:
            clashes += 1


def test_threads_appending_get_gapless_positions_and_versions(store: EventStore) -> None:
    # Every thread appends to its own stream and to one shared stream (retrying its clashes):
    # the log must come out gapless, each stream numbered 1..n.
    threads, per_thread = 6, 15
    barrier = threading.Barrier(threads)

    def writer(i: int) -> None:
        barrier.wait()
        for n in range(per_thread):
            _append_own_and_shared(store, i, n)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    log = store.read_all(0, 10_000)
    assert [e.position for e in log] == list(range(1, 2 * threads * per_thread + 1))
    assert [e.version for e in store.load_stream("shared")] == list(
        range(1, threads * per_thread + 1)
    )
    for i in range(threads):
        assert [e.version for e in store.load_stream(f"own-{i}")] == list(range(1, per_thread + 1))


class RecordingHook:
    """Writes a marker row inside the append's transaction, or fails where told to."""

    def __init__(self, fail_in: str | None = None) -> None:
        self.fail_in = fail_in
        self.seen: list[int] = []

    def before(self, conn: Connection) -> None:
        if self.fail_in == "before":
            raise RuntimeError("refused before")

    def after(self, conn: Connection, appended: list[EventEnvelope]) -> None:
        self.seen = [e.position for e in appended]
        conn.execute(
            text("INSERT INTO markers (position) VALUES (:p)"), {"p": appended[-1].position}
        )
        if self.fail_in == "after":
            raise RuntimeError("refused after")


def _markers(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT position FROM markers ORDER BY position")).scalars())


def test_hook_writes_commit_with_the_events_or_not_at_all(
    engine: Engine, store: EventStore
) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE markers (position INTEGER NOT NULL)"))
    try:
        hook = RecordingHook()
        store.append("h", 0, [event(1), event(2)], hook)
        assert hook.seen == [1, 2]
        assert _markers(engine) == [2]
        for where in ("before", "after"):
            with pytest.raises(RuntimeError):
                store.append("h", 2, [event(3)], RecordingHook(fail_in=where))
        assert store.head_position() == 2
        assert _markers(engine) == [2]
        store.append("h", 2, [event(3)], RecordingHook())  # the connection is usable again
        assert _markers(engine) == [2, 3]
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE markers"))


def _slow_feed_page(store: EventStore, after: int, limit: int) -> dict[str, Any]:
    """The GET /events body as it was built before the feed spliced stored JSON."""
    events = store.read_all(after, limit)
    return {
        "events": [e.to_dict() for e in events],
        "next_after": events[-1].position if events else after,
        "has_more": len(events) == limit,
    }


def test_feed_pages_equal_the_decoded_events(engine: Engine, store: EventStore) -> None:
    store.append(
        'o-ü"1',
        0,
        [
            NewEvent(
                "OrderPlaced",
                {"order_id": "o-ü", "lines": [{"n": [1, 2.5, None, True, {"s": "☃\n\\😀"}]}]},
                {"correlation_id": "c-é", "nested": {"big": 2**70}},
                schema_version=2,
            ),
            NewEvent("OrderStatusChanged", {"order_id": "o-ü", "to_status": "PAID"}),
        ],
    )
    with engine.begin() as conn:
        # An OrderPlaced v1 row as the old code wrote it: the feed serves it as stored.
        conn.execute(
            insert(events_table).values(
                position=3,
                event_id=str(uuid.uuid4()),
                stream_id="old-1",
                stream_version=1,
                event_type="OrderPlaced",
                schema_version=1,
                data={"order_id": "old-1", "total_cents": 2500},
                metadata={},
                recorded_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        )
    store.append("account:c-1", 0, [NewEvent("AccountOpened", {"customer_id": "c-1"})])
    if engine.dialect.name == "sqlite":
        # A timestamp in a shape neither append path writes takes the decoding path.
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO events VALUES (5, 'e-5', 'odd', 1, 'OrderCancelled', 1,"
                " '{\"k\": [1]}', '{}', '2024-05-01 10:00:00')"
            )
    head = store.head_position()
    for after, limit in [(0, 1000), (0, 2), (2, 1), (2, 2), (head, 10), (head + 5, 1)]:
        page = json.loads(feed_page_json(store, after, limit))
        assert page == _slow_feed_page(store, after, limit), (after, limit)
    assert json.loads(feed_page_json(store, 2, 1))["events"][0]["schema_version"] == 1


def _append_many_in_process(url: str, start: multiprocessing.synchronize.Event, i: int) -> int:
    engine = create_database_engine(url)
    store = EventStore(engine)
    start.wait()
    clashes = 0
    for n in range(25):
        clashes += _append_own_and_shared(store, i, n)
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
    monkeypatch.setattr(shared.infra.db, "SQLITE_BUSY_TIMEOUT_MS", 200)
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
