"""Read-your-writes waits: rows awaited to reach a version, re-read in one query per commit.

Each GET with ?min_version used to poll its own row on a 10, 20, 40 ... 100 ms schedule: a row
committed just after a check was answered up to 100 ms late, and every waiting request cost a
SELECT per check. Here one daemon thread per process and table watches the database for
commits by any other connection; on each, it reads the versions of every awaited row in one
query and wakes the requests whose row got there. The thread runs only while someone waits.

On SQLite `PRAGMA data_version` changes when another connection (the projector, in another
process) commits, and reading it touches no table. Other databases have no such counter, so
there the awaited versions are read every `fallback_interval_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection

from sqlalchemy import Connection, Engine

# Reads the current version of each of the given ids that has a row.
VersionReader = Callable[[Connection, Collection[str]], dict[str, int]]


class _Waiter:
    __slots__ = ("min_version", "reached")

    def __init__(self, min_version: int) -> None:
        self.min_version = min_version
        self.reached = threading.Event()


class VersionWaits:
    """Blocks callers until a row reaches a version; one batched read per commit wakes them."""

    def __init__(
        self,
        engine: Engine,
        read_versions: VersionReader,
        poll_interval_s: float = 0.002,
        fallback_interval_s: float = 0.01,
    ) -> None:
        self._engine = engine
        self._read_versions = read_versions
        self._poll_interval_s = poll_interval_s
        self._fallback_interval_s = fallback_interval_s
        self._lock = threading.Lock()
        self._waiting: dict[str, list[_Waiter]] = {}
        self._watcher: threading.Thread | None = None

    def wait(self, row_id: str, min_version: int, max_wait_s: float) -> bool:
        """Return True as soon as the row is at min_version or later, False after max_wait_s."""
        waiter = _Waiter(min_version)
        with self._lock:
            self._waiting.setdefault(row_id, []).append(waiter)
            self._ensure_watcher()
        try:
            # Checked after registering: a commit from here on is the watcher's to see.
            if self._reached_now(row_id, min_version):
                return True
            return waiter.reached.wait(timeout=max(max_wait_s, 0.0))
        finally:
            with self._lock:
                waiters = self._waiting[row_id]
                waiters.remove(waiter)
                if not waiters:
                    del self._waiting[row_id]

    def _reached_now(self, row_id: str, min_version: int) -> bool:
        with self._engine.connect() as conn:
            version = self._read_versions(conn, [row_id]).get(row_id)
        return version is not None and version >= min_version

    def _ensure_watcher(self) -> None:
        # Called with the lock held.
        if self._watcher is None or not self._watcher.is_alive():
            self._watcher = threading.Thread(
                target=self._watch, name="read-model-changes", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        sqlite = self._engine.dialect.name == "sqlite"
        interval = self._poll_interval_s if sqlite else self._fallback_interval_s
        with self._engine.connect() as conn:
            driver = conn.connection.driver_connection
            last = _data_version(driver) if sqlite else 0
            while True:
                with self._lock:
                    if not self._waiting:
                        # Cleared under the lock, so a new waiter starts a new thread.
                        self._watcher = None
                        return
                time.sleep(interval)
                current = _data_version(driver) if sqlite else last + 1
                if current != last:
                    last = current
                    self._wake_reached(conn)

    def _wake_reached(self, conn: Connection) -> None:
        with self._lock:
            row_ids = list(self._waiting)
        if not row_ids:
            return
        versions = self._read_versions(conn, row_ids)
        # End the read transaction: a connection inside one keeps its snapshot, and SQLite's
        # data_version would not move for it.
        conn.rollback()
        with self._lock:
            for row_id, version in versions.items():
                for waiter in self._waiting.get(row_id, ()):
                    if version >= waiter.min_version:
                        waiter.reached.set()


def _data_version(driver_connection: object) -> int:
    cursor = driver_connection.execute("PRAGMA data_version")  # type: ignore[attr-defined]
    return int(cursor.fetchone()[0])
