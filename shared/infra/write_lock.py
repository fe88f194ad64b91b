"""The write lock of a SQLite database and the transactions that hold it.

Writers that must serialize ask for BEGIN IMMEDIATE, queueing first on a Python lock (threads)
and an flock next to the database (processes). `DedicatedWriteConnection` keeps one
connection for a writer that runs one transaction at a time (the event store's group commit).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_LOCK_SUFFIX = ".writelock"

# SQLite's busy handler polls with sleeps of 1, 2, 5, 10 ... 100 ms, so a writer waiting for
# the write lock often wakes long after it was freed (a convoy under load). Writers of one file
# therefore queue before BEGIN IMMEDIATE: threads of one process on a Python lock, which hands
# it over at once, then processes on an flock of a file next to the database, polled every
# 0.02..0.2 ms (POST /orders under wrk, 2 workers, 3 runs each: 1055 vs 994 req/s with
# 0.05..1 ms; only one thread per process polls). The kernel drops an flock when its process
# dies, so a crashed writer never leaves it held; a frozen one holds it until the others time
# out, as with SQLite's own lock.
_FIRST_POLL_S = 0.00002
_LONGEST_POLL_S = 0.0002


class _WriteLock:
    """The write lock of one SQLite file in this process: a thread lock, then its flock."""

    def __init__(self, lock_path: str | None) -> None:
        self.lock_path = lock_path  # None for in-memory and URI databases: no other process
        self._threads = threading.Lock()
        self._fd: int | None = None

    def acquire(self, timeout: float) -> bool:
        """Take both locks within `timeout` seconds in all; False (holding neither) if not."""
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            return False
        try:
            if self.lock_path is None or self._flock(deadline):
                return True
        except BaseException:
            self._threads.release()
            raise
        self._threads.release()
        return False

    def release(self) -> None:
        """Release the flock, then the thread lock."""
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def forget_after_fork(self) -> None:
        """In a forked child: start unlocked, with a lock file of its own to open on first use."""
        # A descriptor inherited across fork shares the parent's flock, so it cannot exclude
        # the parent. Closing the copy leaves the parent's lock alone (only LOCK_UN or closing
        # every copy releases it); LOCK_UN here would release it.
        self._threads = threading.Lock()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _flock(self, deadline: float) -> bool:
        fd = self._fd if self._fd is not None else self._open()
        # flock has no timeout, so poll: briefly at first, a lock is usually held for well
        # under a millisecond.
        pause = _FIRST_POLL_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))
            pause = min(pause * 2, _LONGEST_POLL_S)

    def _open(self) -> int:
        try:
            self._fd = os.open(str(self.lock_path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError(f"write lock file: {exc}")
            ) from exc
        return self._fd


_WRITE_LOCKS: dict[str, _WriteLock] = {}
_ENGINE_LOCK_KEYS: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


def _fresh_locks_after_fork() -> None:
    # A lock held by another thread at fork time would stay held forever in the child.
    global _WRITE_LOCKS_GUARD
    _WRITE_LOCKS_GUARD = threading.Lock()
    for lock in _WRITE_LOCKS.values():
        lock.forget_after_fork()


os.register_at_fork(after_in_child=_fresh_locks_after_fork)


def write_lock_path(database: str) -> str:
    """The file whose flock orders writers of a SQLite database file across processes."""
    return os.path.realpath(database) + WRITE_LOCK_SUFFIX


def register_write_lock(engine: Engine, database: str | None) -> None:
    """Give a SQLite engine its write lock: one per database file, shared by its engines."""
    if database and database != ":memory:" and not database.startswith("file:"):
        key: str = os.path.realpath(database)
        lock_path: str | None = write_lock_path(database)
    else:
        key, lock_path = f"engine:{id(engine)}", None  # in-memory or URI: one per engine
    with _WRITE_LOCKS_GUARD:
        _WRITE_LOCKS.setdefault(key, _WriteLock(lock_path))
        _ENGINE_LOCK_KEYS[engine] = key


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that holds the database's write lock from its start (SQLite) and commits."""
    if engine not in _ENGINE_LOCK_KEYS:
        # PostgreSQL and others lock rows, not the database: nothing to queue for. (A SQLite
        # engine not made by create_database_engine gets the sqlite3 module's own BEGIN.)
        with engine.begin() as conn:
            yield conn
        return
    # Checked out before the lock is taken and returned after it is released: the pool's
    # bookkeeping need not make every other writer wait.
    with engine.connect() as conn, write_lock(engine), _immediate_transaction(conn):
        yield conn


@contextmanager
def write_lock(engine: Engine) -> Iterator[None]:
    """Hold a SQLite engine's write queue (threads, then processes); no transaction, no SQL."""
    lock = _WRITE_LOCKS[_ENGINE_LOCK_KEYS[engine]]
    if not lock.acquire(SQLITE_BUSY_TIMEOUT_MS / 1000):
        # What SQLite itself would answer after its busy timeout.
        raise OperationalError(
            "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
        )
    try:
        yield
    finally:
        lock.release()


@contextmanager
def _immediate_transaction(conn: Connection) -> Iterator[None]:
    # A deferred BEGIN that later writes can fail with SQLITE_BUSY without waiting; IMMEDIATE
    # takes the write lock up front, honouring the busy timeout. BEGIN and COMMIT go to the
    # driver: SQLAlchemy's begin/commit machinery cost a quarter of a one-event append. If the
    # caller's statements make SQLAlchemy begin (it does on first use), its transaction joins
    # this one (see _on_begin) and the commit goes through it, so its state stays right.
    driver: Any = conn.connection.driver_connection
    execute_on_driver(driver, "BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction():
            conn.rollback()
        elif driver.in_transaction:  # SQLite ends it itself after some errors
            execute_on_driver(driver, "ROLLBACK")
        raise
    if conn.in_transaction():
        conn.commit()
    else:
        execute_on_driver(driver, "COMMIT")


def execute_on_driver(driver: Any, statement: str) -> None:
    """Run a statement on the sqlite3 connection, its errors raised as SQLAlchemy's."""
    try:
        driver.execute(statement)
    except sqlite3.OperationalError as exc:
        # Raised as SQLAlchemy would have, so callers catch one exception type.
        raise OperationalError(statement, None, exc) from exc


class DedicatedWriteConnection:
    """One connection kept for a writer that runs one write transaction at a time, so each
    transaction skips the pool's checkout and return; dropped after a failure."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._pid = os.getpid()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """As write_transaction(engine), on the kept connection (other databases: the pool's)."""
        if self.engine not in _ENGINE_LOCK_KEYS:
            with write_transaction(self.engine) as pooled:
                yield pooled
            return
        if self._conn is None or self._pid != os.getpid():
            # A connection inherited across fork belongs to the parent: leave it alone.
            self._conn, self._pid = self.engine.connect(), os.getpid()
        conn = self._conn
        try:
            with write_lock(self.engine), _immediate_transaction(conn):
                yield conn
        except BaseException:
            # After a failure the connection may be unusable (I/O error, invalidated):
            # the next transaction starts on a fresh one.
            self._conn = None
            with suppress(Exception):
                conn.close()
            raise

    def close(self) -> None:
        """Return the kept connection to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None and self._pid == os.getpid():
            conn.close()
