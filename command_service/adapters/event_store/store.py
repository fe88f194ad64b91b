"""The append-only event log: the source of truth of the command side.

Positions are assigned inside the append transaction while it holds the write lock, so they
are gapless and in commit order on every backend. The relay depends on that: it publishes
"everything after the last published position" and must never skip an event that commits late.

How a database takes that lock and writes the rows is its Backend's business (backend.py);
backend_for picks the backend once, from the engine's dialect. The statements are built once,
not per call (rebuilding them was a large share of an append's CPU).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Integer, bindparam, func, insert, select, update
from sqlalchemy.exc import OperationalError

from command_service.adapters.event_store.backend import (
    Backend,
    row_to_envelope,
    scalar_int,
    unavailable,
)
from command_service.adapters.event_store.core import CoreBackend
from command_service.adapters.event_store.group_commit import AppendRequest, GroupCommitter
from command_service.adapters.event_store.postgres import PostgresBackend
from command_service.adapters.event_store.schema import (
    AppendHook,
    ConcurrencyError,
    NewEvent,
    Snapshot,
    StreamAppend,
    events_table,
    metadata,
    snapshots_table,
)
from command_service.adapters.event_store.sqlite import SQLiteBackend
from shared.contract.envelope import EventEnvelope
from shared.infra.db import DedicatedWriteConnection, create_tables, write_transaction
from shared.infra.tracing import current_tracing

log = logging.getLogger("command_service.event_store")

_c = events_table.c
_HEAD = select(func.max(_c.position))
_STREAM_VERSION = select(func.coalesce(func.max(_c.stream_version), 0)).where(
    _c.stream_id == bindparam("stream_id")
)
_LOAD_STREAM = (
    select(events_table)
    .where(_c.stream_id == bindparam("stream_id"))
    .where(_c.stream_version > bindparam("after_version"))
    .order_by(_c.stream_version)
)
_READ_ALL = (
    select(events_table)
    .where(_c.position > bindparam("after_position"))
    .order_by(_c.position)
    .limit(bindparam("limit", type_=Integer))
)
_PING = select(func.count()).select_from(events_table).limit(1)


def backend_for(engine: Engine) -> Backend[Any]:
    """The backend for an engine's database: the one place that looks at its dialect."""
    dialect = engine.dialect
    # The cursor path reproduces the sqlite3 module's row format; other drivers take Core's.
    if dialect.name == "sqlite" and dialect.driver == "pysqlite":
        return SQLiteBackend()
    if dialect.name == "postgresql":
        return PostgresBackend()
    return CoreBackend()


class EventStore:
    """Appends to and reads from the events table."""

    def __init__(
        self,
        engine: Engine,
        on_appended: Callable[[list[EventEnvelope]], None] | None = None,
        max_batch: int = 64,
    ) -> None:
        self.engine = engine
        # Told of each append once it committed (the command API counts events with it).
        self.on_appended = on_appended
        # Picked once, so an append pays no dialect lookups.
        self.backend = backend_for(engine)
        # Appends that arrive while one is being written share the next transaction.
        self.group_commit = GroupCommitter(self._write_batch, max_batch)
        # Only a batch's leader writes, one batch at a time: one connection serves them all.
        self._writer = DedicatedWriteConnection(engine)

    def create_schema(self) -> None:
        """Create the table if missing (idempotent, safe from several processes)."""
        create_tables(self.engine, metadata)

    def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        hook: AppendHook | None = None,
    ) -> list[EventEnvelope]:
        """Append events to one stream atomically if it is at `expected_version`."""
        return self.append_streams([StreamAppend(stream_id, expected_version, events)], hook)

    def append_streams(
        self, appends: Sequence[StreamAppend], hook: AppendHook | None = None
    ) -> list[EventEnvelope]:
        """Append to several streams in one transaction: all events are written, or none.

        Calls made at the same time may share that transaction (group commit); each keeps its
        own version checks, hook and outcome, and returns only once the transaction committed.

        `hook` runs inside that transaction, under the write lock: before the version checks
        and after the insert (to record something that must commit with the events or not).
        """
        if not any(a.events for a in appends):
            return []
        backend = self.backend
        # Everything that needs no lock is done before taking it: every other writer waits
        # for as long as the write lock is held.
        recorded_at = datetime.now(UTC)
        request = AppendRequest(appends, hook, recorded_at, backend.prepare(appends, recorded_at))
        try:
            # The append's span: a child of the request's (waiting for the lock included).
            with current_tracing().span("event_store.append"):
                appended = self.group_commit.submit(request)
        except backend.integrity_errors as exc:
            # The version check runs under the write lock, so this is a backstop for backends
            # where another writer slipped in (or a reused event id); report it as a conflict.
            first = appends[0]
            raise ConcurrencyError(
                first.stream_id, first.expected_version, self.stream_version(first.stream_id)
            ) from exc
        except backend.unavailable_errors as exc:
            raise unavailable(exc) from exc
        if self.on_appended is not None:
            try:
                self.on_appended(appended)
            except Exception:
                # Committed is committed: counting it must not turn the append into an error.
                log.exception("on_appended failed", extra={"count": len(appended)})
        return appended

    def _write_batch(self, take: Callable[[], list[AppendRequest]]) -> None:
        """One transaction for the requests queued by the time the write lock is held."""
        backend = self.backend
        with self._writer.transaction() as conn:
            backend.lock_for_append(conn)
            batch = take()
            if len(batch) == 1:
                # Alone, its failure is the transaction's: no savepoint to pay for.
                batch[0].appended = self._write_request(conn, batch[0])
                return
            for request in batch:
                try:
                    with backend.savepoint(conn):
                        request.appended = self._write_request(conn, request)
                except backend.unavailable_errors:
                    raise  # the database refuses: the whole batch fails and rolls back
                except Exception as exc:
                    # Its own conflict or hook error: its savepoint is gone, the batch goes on.
                    request.error = exc

    def _write_request(self, conn: Connection, request: AppendRequest) -> list[EventEnvelope]:
        hook = request.hook
        if hook is not None:
            hook.before(conn)
        appended = self.backend.insert_events(
            conn, request.appends, request.recorded_at, request.prepared
        )
        if hook is not None:
            hook.after(conn, list(appended))
        return appended

    def load_stream(self, stream_id: str, after_version: int = 0) -> list[EventEnvelope]:
        """The events of one stream in version order."""
        return self._read(_LOAD_STREAM, {"stream_id": stream_id, "after_version": after_version})

    def read_all(self, after_position: int = 0, limit: int = 1000) -> list[EventEnvelope]:
        """Up to `limit` events of the whole log after a position, in log order."""
        return self._read(_READ_ALL, {"after_position": after_position, "limit": limit})

    def load_snapshot(self, stream_id: str) -> Snapshot | None:
        """The stream's latest snapshot, if one was taken."""
        query = select(snapshots_table).where(snapshots_table.c.stream_id == stream_id)
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).mappings().first()
        except OperationalError as exc:
            raise unavailable(exc) from exc
        if row is None:
            return None
        return Snapshot(row["stream_id"], row["version"], row["state_format"], row["state"])

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store a snapshot unless a newer one is already there (writers may race)."""
        values = {
            "version": snapshot.version,
            "state_format": snapshot.state_format,
            "state": snapshot.state,
            "taken_at": datetime.now(UTC),
        }
        table = snapshots_table
        with write_transaction(self.engine) as conn:
            updated = conn.execute(
                update(table)
                .where(table.c.stream_id == snapshot.stream_id)
                .where(table.c.version < snapshot.version)
                .values(**values)
            )
            if (
                updated.rowcount == 0
                and conn.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c.stream_id == snapshot.stream_id)
                )
                == 0
            ):
                conn.execute(insert(table).values(stream_id=snapshot.stream_id, **values))

    def head_position(self) -> int:
        """The position of the newest event (0 for an empty log)."""
        try:
            with self.engine.connect() as conn:
                return scalar_int(conn.scalar(_HEAD))
        except OperationalError as exc:
            raise unavailable(exc) from exc

    def stream_version(self, stream_id: str) -> int:
        """The version of a stream (0 if it has no events)."""
        with self.engine.connect() as conn:
            return scalar_int(conn.scalar(_STREAM_VERSION, {"stream_id": stream_id}))

    def ping(self) -> None:
        """Raise EventStoreUnavailable unless the database answers a query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(_PING)
        except OperationalError as exc:
            raise unavailable(exc) from exc

    def _read(self, query: Any, params: dict[str, Any]) -> list[EventEnvelope]:
        try:
            with self.engine.connect() as conn:
                return [row_to_envelope(row._mapping) for row in conn.execute(query, params)]
        except OperationalError as exc:
            raise unavailable(exc) from exc
