"""One event-store suite, EventStoreContract, run on SQLite (always) and PostgreSQL (when its server
is here) by a subclass each; SQLite's own concerns are in test_event_store_sqlite.py."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert, text

from command_service.adapters.event_feed import feed_page_json
from command_service.adapters.event_store import (
    Backend,
    ConcurrencyError,
    EventStore,
    NewEvent,
    StreamAppend,
    events_table,
    metadata,
)
from command_service.adapters.event_store.postgres import PostgresBackend
from command_service.adapters.event_store.sqlite import SQLiteBackend
from shared.contract.envelope import EventEnvelope
from shared.infra.db import create_database_engine


def event(n: int, kind: str = "Happened") -> NewEvent:
    return NewEvent(kind, {"n": n, "amount": "12.50"}, {"correlation_id": f"c-{n}"})


def append_own_and_shared(store: EventStore, i: int, n: int) -> int:
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


def _slow_feed_page(store: EventStore, after: int, limit: int) -> dict[str, Any]:
    """The GET /events body as it was built before the feed spliced stored JSON."""
    events = store.read_all(after, limit)
    return {
        "events": [e.to_dict() for e in events],
        "next_after": events[-1].position if events else after,
        "has_more": len(events) == limit,
    }


class EventStoreContract:
    """What every event store backend must do; a subclass per backend implements create_store."""

    backend_type: type[Backend[Any]]

    def create_store(self, request: pytest.FixtureRequest) -> EventStore:
        """A store on an empty database (the fixture creates its schema); `request` gives it
        the fixtures it needs."""
        raise NotImplementedError

    def drop_store(self, store: EventStore) -> None:
        """Undo create_store (the database may be shared with other suites)."""
        store.engine.dispose()

    @pytest.fixture
    def store(self, request: pytest.FixtureRequest) -> Iterator[EventStore]:
        store = self.create_store(request)
        store.create_schema()
        yield store
        self.drop_store(store)

    def test_the_engine_picks_this_backend(self, store: EventStore) -> None:
        assert type(store.backend) is self.backend_type

    def test_append_and_read_stream(self, store: EventStore) -> None:
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

    def test_positions_are_global_gapless_and_in_order(self, store: EventStore) -> None:
        store.append("a", 0, [event(1)])
        store.append("b", 0, [event(2), event(3)])
        store.append("a", 1, [event(4)])
        log = store.read_all(0, 100)
        assert [e.position for e in log] == [1, 2, 3, 4]
        assert [(e.stream_id, e.version) for e in log] == [("a", 1), ("b", 1), ("b", 2), ("a", 2)]
        assert [e.position for e in store.read_all(2, 1)] == [3]
        assert store.head_position() == 4

    def test_expected_version_conflict_writes_nothing(self, store: EventStore) -> None:
        store.append("o-1", 0, [event(1)])
        with pytest.raises(ConcurrencyError) as err:
            store.append("o-1", 0, [event(2), event(3)])
        assert (err.value.expected, err.value.actual) == (0, 1)
        assert store.head_position() == 1
        with pytest.raises(ConcurrencyError):
            store.append("o-1", 5, [event(2)])
        assert [e.version for e in store.load_stream("o-1")] == [1]

    def test_multi_stream_append_is_all_or_nothing(self, store: EventStore) -> None:
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

    def test_duplicate_event_id_is_rejected(self, store: EventStore) -> None:
        first = event(1)
        store.append("a", 0, [first])
        with pytest.raises(ConcurrencyError):
            store.append("b", 0, [first])
        assert store.head_position() == 1

    def test_concurrent_appends_at_same_version_exactly_one_wins(self, store: EventStore) -> None:
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

    def test_threads_appending_get_gapless_positions_and_versions(self, store: EventStore) -> None:
        # Every thread appends to its own stream and to one shared stream (retrying its clashes):
        # the log must come out gapless, each stream numbered 1..n.
        threads, per_thread = 6, 15
        barrier = threading.Barrier(threads)

        def writer(i: int) -> None:
            barrier.wait()
            for n in range(per_thread):
                append_own_and_shared(store, i, n)

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
            own = [e.version for e in store.load_stream(f"own-{i}")]
            assert own == list(range(1, per_thread + 1))

    def test_hook_writes_commit_with_the_events_or_not_at_all(self, store: EventStore) -> None:
        engine = store.engine
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

    def test_feed_pages_equal_the_decoded_events(self, store: EventStore) -> None:
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
        with store.engine.begin() as conn:
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
        with store.engine.begin() as conn:
            # A timestamp in a shape neither append path writes (SQLite decodes this row).
            conn.exec_driver_sql(
                "INSERT INTO events VALUES (5, 'e-5', 'odd', 1, 'OrderCancelled', 1,"
                " '{\"k\": [1]}', '{}', '2024-05-01 10:00:00')"
            )
        head = store.head_position()
        for after, limit in [(0, 1000), (0, 2), (2, 1), (2, 2), (head, 10), (head + 5, 1)]:
            page = json.loads(feed_page_json(store, after, limit))
            assert page == _slow_feed_page(store, after, limit), (after, limit)
        assert json.loads(feed_page_json(store, 2, 1))["events"][0]["schema_version"] == 1


class TestSQLiteEventStore(EventStoreContract):
    """The contract on a fresh SQLite file per test."""

    backend_type = SQLiteBackend

    def create_store(self, request: pytest.FixtureRequest) -> EventStore:
        folder: Path = request.getfixturevalue("tmp_path")
        return EventStore(create_database_engine(f"sqlite:///{folder / 'events.db'}"))


class TestPostgresEventStore(EventStoreContract):
    """The contract on the session's PostgreSQL server (skipped when none is installed)."""

    backend_type = PostgresBackend

    def create_store(self, request: pytest.FixtureRequest) -> EventStore:
        url: str = request.getfixturevalue("postgres_url")
        return EventStore(create_database_engine(url))

    def drop_store(self, store: EventStore) -> None:
        metadata.drop_all(store.engine)
        store.engine.dispose()
