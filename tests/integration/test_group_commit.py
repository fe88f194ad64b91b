"""Group commit keeps every guarantee of a lone append, on SQLite and PostgreSQL: appends queued
while the write lock is taken share one transaction, and each gets its own result or error.

Each test holds the append lock itself while its writers queue, so that they form one batch.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from command_service.adapters.event_store import (
    ConcurrencyError,
    EventStore,
    EventStoreUnavailable,
    NewEvent,
    metadata,
)
from command_service.adapters.event_store.backend import scalar_int
from devtools.waiting import wait_until
from shared.contract.envelope import EventEnvelope
from shared.infra.db import create_database_engine, write_lock

# postgres.py's advisory lock key: held from another session, it stops every append.
_PG_APPEND_LOCK_KEY = 7_311_001


def event(n: int) -> NewEvent:
    return NewEvent("Happened", {"n": n}, {"correlation_id": f"c-{n}"})


class Hook:
    """Writes a marker row with the request's events; fails or blocks where told to."""

    def __init__(self, fail_in: str | None = None, hold: threading.Event | None = None) -> None:
        self.fail_in = fail_in
        self.hold = hold
        self.entered = threading.Event()

    def before(self, conn: Connection) -> None:
        if self.fail_in == "before":
            raise RuntimeError("refused before")

    def after(self, conn: Connection, appended: list[EventEnvelope]) -> None:
        conn.execute(
            text("INSERT INTO markers (position) VALUES (:p)"), {"p": appended[-1].position}
        )
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(30)
        if self.fail_in == "after":
            raise RuntimeError("refused after")
        if self.fail_in == "database":
            raise OperationalError("COMMIT", None, Exception("disk I/O error"))


class Writer(threading.Thread):
    """Appends once in a thread of its own and keeps the outcome."""

    def __init__(
        self, store: EventStore, stream: str, expected: int, n: int, hook: Hook | None = None
    ) -> None:
        super().__init__(daemon=True)
        self.args_ = (store, stream, expected, n, hook)
        self.appended: list[EventEnvelope] | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        store, stream, expected, n, hook = self.args_
        try:
            self.appended = store.append(stream, expected, [event(n), event(n + 1000)], hook)
        except BaseException as exc:
            self.error = exc


def start_queued(store: EventStore, writers: list[Writer]) -> None:
    """Start the writers one at a time, each queued before the next starts: the batch's order
    is then the list's."""
    for count, writer in enumerate(writers, start=1):
        writer.start()
        wait_until(lambda n=count: store.group_commit.waiting == n, 10)  # type: ignore[misc]


class GroupCommitContract:
    """What group commit must keep; a subclass per backend says how to hold the append lock."""

    def create_store(self, request: pytest.FixtureRequest) -> EventStore:
        raise NotImplementedError

    def hold_append_lock(self, store: EventStore) -> contextlib.AbstractContextManager[None]:
        """Keep every append of `store` waiting for the lock while the block runs."""
        raise NotImplementedError

    @pytest.fixture
    def store(self, request: pytest.FixtureRequest) -> Iterator[EventStore]:
        store = self.create_store(request)
        store.create_schema()
        with store.engine.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS markers (position INTEGER NOT NULL)"))
        yield store
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE markers"))
        metadata.drop_all(store.engine)
        store.engine.dispose()

    def one_batch(self, store: EventStore, writers: list[Writer]) -> None:
        """Start the writers while the lock is held, so that they all queue, then let them go."""
        before = store.group_commit.stats.batches
        with self.hold_append_lock(store):
            start_queued(store, writers)
        for writer in writers:
            writer.join(30)
        assert store.group_commit.stats.batches == before + 1, "they did not share one batch"

    def test_appends_queued_together_share_one_transaction(self, store: EventStore) -> None:
        writers = [Writer(store, f"s-{i}", 0, i) for i in range(6)]
        self.one_batch(store, writers)
        assert [w.error for w in writers] == [None] * 6
        positions = [[e.position for e in w.appended or []] for w in writers]
        assert positions == [[2 * i + 1, 2 * i + 2] for i in range(6)]
        assert store.group_commit.stats.largest == 6
        log = store.read_all(0, 100)
        assert [(e.stream_id, e.version) for e in log] == [
            (f"s-{i}", v) for i in range(6) for v in (1, 2)
        ]

    def test_a_conflict_fails_only_its_own_request(self, store: EventStore) -> None:
        store.append("taken", 0, [event(0)])
        writers = [
            Writer(store, "a", 0, 1),
            Writer(store, "a", 0, 2),  # a batch-mate got there first: a real conflict
            Writer(store, "taken", 0, 3),  # stale expected version
            Writer(store, "b", 0, 4),
        ]
        self.one_batch(store, writers)
        first, clash, stale, last = writers
        assert first.error is None and last.error is None
        assert isinstance(clash.error, ConcurrencyError) and clash.error.actual == 2
        assert isinstance(stale.error, ConcurrencyError) and stale.error.actual == 1
        assert [e.position for e in last.appended or []] == [4, 5]
        assert [e.data["n"] for e in store.load_stream("a")] == [1, 1001]
        assert store.stream_version("taken") == 1

    def test_a_failing_hook_fails_only_its_own_request(self, store: EventStore) -> None:
        writers = [
            Writer(store, "ok-1", 0, 1, Hook()),
            Writer(store, "bad-before", 0, 2, Hook(fail_in="before")),
            Writer(store, "bad-after", 0, 3, Hook(fail_in="after")),
            Writer(store, "ok-2", 0, 4, Hook()),
        ]
        self.one_batch(store, writers)
        assert [str(w.error) if w.error else None for w in writers] == [
            None,
            "refused before",
            "refused after",
            None,
        ]
        # The failed requests left nothing: no events, and the marker written before the
        # failure is rolled back with its savepoint.
        assert [e.stream_id for e in store.read_all(0, 100)] == ["ok-1"] * 2 + ["ok-2"] * 2
        assert _markers(store.engine) == [2, 4]

    def test_a_database_refusal_fails_the_whole_batch(self, store: EventStore) -> None:
        writers = [
            Writer(store, "a", 0, 1, Hook()),
            Writer(store, "b", 0, 2, Hook(fail_in="database")),
            Writer(store, "c", 0, 3, Hook()),
        ]
        self.one_batch(store, writers)
        assert all(isinstance(w.error, EventStoreUnavailable) for w in writers), [
            w.error for w in writers
        ]
        assert store.head_position() == 0
        assert _markers(store.engine) == []
        store.append("a", 0, [event(9)])  # and the next batch is a normal one
        assert store.head_position() == 1

    def test_nothing_is_acknowledged_before_the_commit(self, store: EventStore) -> None:
        release = threading.Event()
        last_hook = Hook(hold=release)
        writers = [Writer(store, f"s-{i}", 0, i) for i in range(3)]
        writers.append(Writer(store, "last", 0, 9, last_hook))
        with self.hold_append_lock(store):
            start_queued(store, writers)
        try:
            assert last_hook.entered.wait(30)
            # Every other request of the batch is written, and none may have returned yet:
            # the transaction holding their events has not committed.
            assert [w.is_alive() for w in writers] == [True] * 4
            assert _committed_head(store.engine) == 0
        finally:
            release.set()
        for writer in writers:
            writer.join(30)
        assert [w.error for w in writers] == [None] * 4
        assert _committed_head(store.engine) == 8

    def test_a_lone_append_is_a_batch_of_one(self, store: EventStore) -> None:
        stats = store.group_commit.stats
        before = (stats.batches, stats.requests)
        store.append("alone", 0, [event(1)])
        assert (stats.batches, stats.requests) == (before[0] + 1, before[1] + 1)
        with pytest.raises(ConcurrencyError):
            store.append("alone", 0, [event(2)])
        assert store.stream_version("alone") == 1


def _markers(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT position FROM markers ORDER BY position")).scalars())


def _committed_head(engine: Engine) -> int:
    # A connection of its own sees only what has committed.
    with engine.connect() as conn:
        return scalar_int(conn.execute(text("SELECT max(position) FROM events")).scalar())


class TestSQLiteGroupCommit(GroupCommitContract):
    """On SQLite the append lock is the write lock: a thread lock, then a lock file's flock."""

    def create_store(self, request: pytest.FixtureRequest) -> EventStore:
        folder: Path = request.getfixturevalue("tmp_path")
        return EventStore(create_database_engine(f"sqlite:///{folder / 'events.db'}"))

    def hold_append_lock(self, store: EventStore) -> contextlib.AbstractContextManager[None]:
        return write_lock(store.engine)


class TestPostgresGroupCommit(GroupCommitContract):
    """On PostgreSQL the append lock is a transaction-scoped advisory lock."""

    def create_store(self, request: pytest.FixtureRequest) -> EventStore:
        url: str = request.getfixturevalue("postgres_url")
        return EventStore(create_database_engine(url))

    @contextlib.contextmanager
    def hold_append_lock(self, store: EventStore) -> Iterator[None]:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_APPEND_LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_APPEND_LOCK_KEY})
                conn.commit()
