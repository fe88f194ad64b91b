"""PostgreSQL: SQLAlchemy Core's statements (core.py), appends serialized by an advisory lock."""

from __future__ import annotations

from sqlalchemy import Connection, text

from command_service.adapters.event_store.core import CoreBackend

# Arbitrary constant naming the PostgreSQL advisory lock that serializes appends.
_APPEND_LOCK_KEY = 7_311_001
_LOCK_FOR_APPEND = text("SELECT pg_advisory_xact_lock(:key)")


class PostgresBackend(CoreBackend):
    """CoreBackend, with every append holding one transaction-scoped advisory lock."""

    def lock_for_append(self, conn: Connection) -> None:
        """Take the append lock until commit or rollback.

        Without it, appends running at once read the same head and all but one fail on the
        position's key, reported as conflicts even when they write different streams.
        """
        conn.execute(_LOCK_FOR_APPEND, {"key": _APPEND_LOCK_KEY})
