"""The relay's lease and checkpoint: one row per topic in the event-store database.

Only the lease holder may publish, and its published position is stored with
`UPDATE ... WHERE lease_owner = me`, so a relay that lost its lease (it stalled past the
expiry and another took over) can never move the checkpoint again. Expiry is wall-clock UTC
written by the relays themselves, so relays sharing a database need roughly synced clocks.

These rows share the event log's database, and SQLite has one write lock per file: every
write here is one short statement in its own transaction (never around a Kafka call), and a
relay waiting for a held lease only reads, so a paused relay rarely holds up command appends.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from shared.infra.db import UTCDateTime, create_tables, write_transaction

log = logging.getLogger("command_service.relay_lease")

# The most a relay's own view of its lease ends before the stored expiry (a quarter of the
# TTL for short leases).
LEASE_SAFETY_MARGIN_SECONDS = 1.0

metadata = MetaData()

relay_state_table = Table(
    "relay_state",
    metadata,
    # One row per destination topic: publishing to a new topic starts from the beginning.
    Column("topic", String(249), primary_key=True),
    Column(
        "published_position",
        BigInteger().with_variant(Integer, "sqlite"),
        nullable=False,
        default=0,
    ),
    Column("lease_owner", String(200), nullable=True),
    Column("lease_expires_at", UTCDateTime(), nullable=True),
)


class LeaseLost(Exception):
    """The lease is held by another relay (or expired and was taken): stop publishing."""


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a topic's lease and until when (None if nobody does)."""

    owner: str | None
    expires_at: datetime | None


def new_owner_id() -> str:
    """A unique, human-readable name for this relay process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RelayLease:
    """Acquire, renew and release one topic's lease, and read/store its published position."""

    def __init__(self, engine: Engine, topic: str, owner: str, ttl_seconds: float) -> None:
        self.engine = engine
        self.topic = topic
        self.owner = owner
        self.ttl = timedelta(seconds=ttl_seconds)

    def create_schema(self) -> None:
        """Create the relay_state table if missing (idempotent, safe from several processes)."""
        create_tables(self.engine, metadata)

    def try_acquire(self) -> bool:
        """Take the lease if it is free, expired or already ours; False if another holds it."""
        now = datetime.now(UTC)
        table = relay_state_table
        holder = self.holder()
        if holder.owner not in (None, self.owner) and (
            holder.expires_at is not None and holder.expires_at > now
        ):
            # Held by another relay: said without a write transaction, so a standby polling
            # here never queues behind (or blocks) the appends of the command service.
            return False
        try:
            with write_transaction(self.engine) as conn:
                exists = conn.scalar(select(table.c.topic).where(table.c.topic == self.topic))
                if exists is None:
                    conn.execute(
                        insert(table).values(
                            topic=self.topic,
                            published_position=0,
                            lease_owner=self.owner,
                            lease_expires_at=now + self.ttl,
                        )
                    )
                    return True
                # Conditional, so it is also safe on backends where the row is not locked.
                result = conn.execute(
                    update(table)
                    .where(table.c.topic == self.topic)
                    .where(
                        or_(
                            table.c.lease_owner.is_(None),
                            table.c.lease_owner == self.owner,
                            table.c.lease_expires_at <= now,
                        )
                    )
                    .values(lease_owner=self.owner, lease_expires_at=now + self.ttl)
                )
                return result.rowcount == 1
        except IntegrityError:
            return False  # another relay inserted the row first; it holds the lease

    def renew(self) -> None:
        """Extend the lease by its TTL from now; raise LeaseLost if it is no longer ours."""
        self._update_owned(lease_expires_at=datetime.now(UTC) + self.ttl)

    def release(self) -> None:
        """Give the lease up so a waiting relay can take over at once (no-op if not ours)."""
        table = relay_state_table
        with write_transaction(self.engine) as conn:
            conn.execute(
                update(table)
                .where(table.c.topic == self.topic)
                .where(table.c.lease_owner == self.owner)
                .values(lease_owner=None, lease_expires_at=None)
            )

    def published_position(self) -> int:
        """The last position acknowledged by the broker (0 if nothing was published)."""
        table = relay_state_table
        with self.engine.connect() as conn:
            value = conn.scalar(
                select(table.c.published_position).where(table.c.topic == self.topic)
            )
        return int(value or 0)

    def store_position(self, position: int) -> None:
        """Record a published position, fenced: raise LeaseLost unless we still hold the lease."""
        self._update_owned(published_position=position)

    def holder(self) -> LeaseHolder:
        """The current holder as stored (for logs, tests and operators)."""
        table = relay_state_table
        with self.engine.connect() as conn:
            row = conn.execute(
                select(table.c.lease_owner, table.c.lease_expires_at).where(
                    table.c.topic == self.topic
                )
            ).first()
        return LeaseHolder(None, None) if row is None else LeaseHolder(row[0], row[1])

    def _update_owned(self, **values: object) -> None:
        table = relay_state_table
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                update(table)
                .where(table.c.topic == self.topic)
                .where(table.c.lease_owner == self.owner)
                .values(**values)
            )
        if result.rowcount != 1:
            raise LeaseLost(f"relay {self.owner} no longer holds the lease on {self.topic!r}")


class LeaseHeartbeat:
    """Renews a held lease from a background thread so long Kafka waits cannot let it lapse.

    `holds_lease()` is what the relay asks before it reads or sends: it turns False once the
    lease was taken (`lost`) or when the last successful renewal is too old to trust.
    """

    def __init__(self, lease: RelayLease, interval_seconds: float) -> None:
        self.lease = lease
        self.interval = interval_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._valid_until = 0.0

    @property
    def safety_margin(self) -> float:
        """How long before the stored expiry this relay already stops trusting its lease."""
        # Covers the clock skew between relays and the time a send takes to leave the process.
        return min(LEASE_SAFETY_MARGIN_SECONDS, self.lease.ttl.total_seconds() / 4)

    def start(self, acquired_at: float | None = None) -> None:
        """Start renewing; call right after a successful try_acquire() that began at
        `acquired_at` (time.monotonic(); now if not given)."""
        self.lost.clear()
        self._stop.clear()
        self._extend_from(time.monotonic() if acquired_at is None else acquired_at)
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (the lease itself is left as it is)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def holds_lease(self) -> bool:
        """True while the lease is ours for sure: not taken, and renewed recently enough."""
        # A process paused (SIGSTOP, a VM stall) past its lease wakes up with this False,
        # because time.monotonic() kept running while it was stopped.
        return not self.lost.is_set() and time.monotonic() < self._valid_until

    def _extend_from(self, renewal_started: float) -> None:
        # From when the write began, not ended: the stored expiry is at least this late.
        self._valid_until = renewal_started + self.lease.ttl.total_seconds() - self.safety_margin

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            started = time.monotonic()
            try:
                self.lease.renew()
                self._extend_from(started)
            except LeaseLost:
                log.warning("lease taken by another relay", extra={"topic": self.lease.topic})
                self.lost.set()
                return
            except Exception:
                # holds_lease() turns False on its own once the last renewal is too old.
                log.exception("lease renewal failed", extra={"topic": self.lease.topic})
