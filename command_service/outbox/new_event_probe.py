"""The idle relay's cheap question to the event log: has it grown past a position?"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine

from command_service.adapters.event_store import events_table

# The relay's logger: the probe logs as part of the relay.
log = logging.getLogger("command_service.relay")


class NewEventProbe:
    """Says cheaply whether the log grew past a position, so an idle relay can poll often.

    SQLite: `SELECT max(position)` on one connection kept open (microseconds, against about a
    millisecond for a read through the event store). Other databases: always "maybe", and the
    relay reads as before.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._connection: Any = None

    def grew_past(self, position: int) -> bool:
        """False only when the log is known to end at or before `position`."""
        if self.engine.dialect.name != "sqlite":
            return True
        try:
            if self._connection is None:
                self._connection = self.engine.raw_connection()
            cursor = self._connection.cursor()
            try:
                # Autocommit (see shared/infra/db.py): each query sees the latest commit.
                cursor.execute(f"SELECT max(position) FROM {events_table.name}")
                row = cursor.fetchone()
            finally:
                cursor.close()
        except Exception:
            self.close()
            return True  # let the real read run into the problem and report it
        return row is not None and row[0] is not None and int(row[0]) > position

    def close(self) -> None:
        """Give the connection back (the next question opens another)."""
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                log.debug("closing the probe connection failed", exc_info=True)
            self._connection = None
