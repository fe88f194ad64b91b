"""Read-your-writes waits: rows awaited to reach a version, re-read in one query per commit.

Each GET with ?min_version used to poll its own row on a 10, 20, 40 ... 100 ms schedule: a row
committed just after a check was answered up to 100 ms late, and every waiting request cost a
SELECT per check. Here one daemon thread per process and table watches the database for
commits by any other connection; on each, it reads the versions of every awaited row in one
query and wakes the requests whose row got there. The thread runs only while someone waits.

On SQLite `PRAGMA data_version` changes when another connection (the projector, in another
process) commits, and reading it touches no table. Other databases have no such counter, so
there the awaited versions are read every `fallback_interval_s`.

A waiting request holds a server thread, so a process lets only READ_YOUR_WRITES_MAX_WAITERS
wait at once
(`WaiterSlots`); the next get TooManyWaiters (429 with Retry-After) instead of a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Connection, Engine, RowMapping

# Reads the current version of each of the given ids that has a row.
VersionReader = Callable[[Connection, Collection[str]], dict[str, int]]
# Whether the caller may see a row, by the customer it belongs to (the HTTP access policy).
Visible = Callable[[str], bool]
Found = TypeVar("Found")


class TooManyWaiters(Exception):
    """Every waiting slot of this process is taken: the caller should retry shortly."""


class WaiterSlots:
    """A bounded number of requests may wait at once; the next ones are refused, not queued."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.taken = 0  # may be read without the lock: a snapshot is enough to report it
        self._lock = threading.Lock()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a slot while the block runs; TooManyWaiters at once if none is free."""
        with self._lock:
            if self.taken >= self.size:
                raise TooManyWaiters(f"all {self.size} waiting slots of this process are taken")
            self.taken += 1
        try:
            yield
        finally:
            with self._lock:
                self.taken -= 1


@dataclass(frozen=True)
class RowWait:
    """What a request waits for: a row at a version, for a caller who sees `visible` rows."""

    row_id: str
    min_version: int
    max_wait_s: float
    visible: Visible


def wait_for_version(
    waits: VersionWaits,
    slots: WaiterSlots,
    wanted: RowWait,
    load: Callable[[], Found | None],
    row_of: Callable[[Found], RowMapping],
) -> tuple[Found | None, bool]:
    """(what `load` finds, whether it reached the version) once it did or time ran out.

    Only a request that must wait takes a slot (TooManyWaiters when none is free). A row the
    caller may not see is answered as a missing one, after the whole wait as a missing one
    is: the timing must not tell that it exists.
    """
    found = load()
    if found is not None and _reached(row_of(found), wanted):
        return found, True
    with slots.hold():
        deadline = time.monotonic() + wanted.max_wait_s
        waits.wait(wanted.row_id, wanted.min_version, wanted.max_wait_s)
        found = load()
        if found is None or not wanted.visible(row_of(found)["customer_id"]):
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return None, False
    return found, _reached(row_of(found), wanted)


def _reached(row: RowMapping, wanted: RowWait) -> bool:
    return wanted.visible(row["customer_id"]) and int(row["version"]) >= wanted.min_version


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
