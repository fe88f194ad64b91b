"""Wakes read-your-writes waiters when the projector commits, with one poller per process.

Each GET with ?min_version used to poll its own row on a 10, 20, 40 ... 100 ms schedule: a row
committed just after a check was answered up to 100 ms late, and every waiting request cost a
SELECT per check. Here one daemon thread per process watches the database for commits by any
other connection and wakes all waiters at once; each waiter then re-checks its own row. The
thread runs only while someone waits.

On SQLite `PRAGMA data_version` changes when another connection (the projector, in another
process) commits, and reading it touches no table. Other databases have no such counter, so
waiters are simply woken every `fallback_interval_s`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine


class ReadModelChanges:
    """Blocks callers until a condition over the read model holds, re-checked on each commit."""

    def __init__(
        self,
        engine: Engine,
        poll_interval_s: float = 0.002,
        fallback_interval_s: float = 0.01,
    ) -> None:
        self._engine = engine
        self._poll_interval_s = poll_interval_s
        self._fallback_interval_s = fallback_interval_s
        self._changed = threading.Condition()
        self._generation = 0
        self._waiters = 0
        self._watcher: threading.Thread | None = None

    def wait_until(self, reached: Callable[[], bool], max_wait_s: float) -> bool:
        """Return True as soon as reached() holds, False if max_wait_s passes first."""
        deadline = time.monotonic() + max_wait_s
        with self._changed:
            self._waiters += 1
            self._ensure_watcher()
        try:
            while True:
                # Read the generation before checking, so a commit that lands between the
                # check and the wait below is not slept through.
                with self._changed:
                    seen = self._generation
                if reached():
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wait_past(seen, remaining)
        finally:
            with self._changed:
                self._waiters -= 1

    def _wait_past(self, generation: int, timeout_s: float) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._generation != generation, timeout=timeout_s)

    def _ensure_watcher(self) -> None:
        # Called with the condition held.
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
                with self._changed:
                    if self._waiters == 0:
                        # Cleared under the lock, so a new waiter starts a new thread.
                        self._watcher = None
                        return
                time.sleep(interval)
                current = _data_version(driver) if sqlite else last + 1
                if current != last:
                    last = current
                    with self._changed:
                        self._generation += 1
                        self._changed.notify_all()


def _data_version(driver_connection: object) -> int:
    cursor = driver_connection.execute("PRAGMA data_version")  # type: ignore[attr-defined]
    return int(cursor.fetchone()[0])
