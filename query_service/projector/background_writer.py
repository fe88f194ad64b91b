"""One thread that runs database writes in the order they were handed over.

The rebuild projects the next slice of the log while this thread writes the last one: SQLite
releases the GIL while it inserts, so the two overlap. The connection is used by one thread at
a time: the submitter touches it again only after `drain`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType

Job = Callable[[], object]


class BackgroundWriter:
    """Runs submitted jobs in order on one thread; a job's error is raised to the submitter.

    After a failed job the later ones are dropped (they belong to a transaction that will roll
    back) and every `submit` or `drain` raises that error. Use it as a context manager: on
    exit the thread is stopped, so the caller may roll back or commit the connection.
    """

    def __init__(self, queued: int = 1, name: str = "read-model-writer") -> None:
        # Bounded: at most `queued` jobs wait, so a slow database holds back the producer
        # instead of letting pending rows pile up in memory.
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=queued)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Hand a job over; blocks while `queued` jobs are waiting."""
        self._raise_if_failed()
        self._jobs.put(job)

    def drain(self) -> None:
        """Wait until every submitted job has run; raises the first job error, if any."""
        self._jobs.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Stop the thread once the jobs already submitted are done (or dropped)."""
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc is not None:
            self._error = self._error or exc  # drop what is still queued
        self.close()

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as exc:  # handed to the submitting thread
                self._error = exc
            finally:
                self._jobs.task_done()
