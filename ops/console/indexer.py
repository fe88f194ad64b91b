"""The audit index's own consumer: a console thread following the command API's GET /events.

The log feed, not Kafka: it is complete, gapless and in log order (a topic may be trimmed),
and it needs only the console's events:read token, no consumer group or broker credentials.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ops.console.search import AuditIndex
from ops.console.service_client import ServiceClient, ServiceError

log = logging.getLogger("ops.console.indexer")
PAGE = 500


@dataclass
class IndexProgress:
    """How far the index is, and the log's head when last asked."""

    indexed: int = 0
    head: int | None = None
    error: str | None = None

    @property
    def behind(self) -> int | None:
        """Events in the log not yet searchable (None: head unknown)."""
        return None if self.head is None else max(self.head - self.indexed, 0)


class LogIndexer:
    """Reads pages after the index's position until caught up, then waits `interval_s`."""

    def __init__(self, index: AuditIndex, command_api: ServiceClient, interval_s: float) -> None:
        self.index = index
        self.command_api = command_api
        self.interval_s = interval_s
        self.progress = IndexProgress(indexed=index.position())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-indexer", daemon=True)

    def start(self) -> None:
        """Follow the log in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current page."""
        self._stop.set()

    def catch_up(self) -> None:
        """Index every page there is now (one pass; the thread calls it repeatedly)."""
        head = self.command_api.get_json("/events/head")
        self.progress.head = int(head["head_position"])
        while not self._stop.is_set():
            after = self.index.position()
            page = self.command_api.get_json("/events", {"after": after, "limit": PAGE})
            self.index.add(page["events"], int(page["next_after"]))
            self.progress.indexed = self.index.position()
            if not page["has_more"]:
                break
        self.progress.error = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.catch_up()
            except (ServiceError, KeyError, TypeError, ValueError) as exc:
                self.progress.error = str(exc)
                log.warning("audit index cannot read the log", extra={"error": str(exc)})
            except Exception as exc:  # the index database: keep trying, say why
                self.progress.error = repr(exc)
                log.exception("audit index failed")
            self._stop.wait(self.interval_s)
