"""The idempotency_keys table: the first response to each Idempotency-Key, written in the
event log's database inside the command's append, kept until IDEMPOTENCY_KEY_TTL_SECONDS.

A row belongs to one caller: its key column is scoped_key(sub, key), never the raw header.
What a key means on the wire (the header, fingerprints, replays) is in http/idempotency.py.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import OperationalError

from command_service.adapters.event_store.backend import unavailable
from shared.infra.db import UTCDateTime, create_tables

PURGE_CHANCE = 0.01  # expired rows are deleted now and then, not on every write

metadata = MetaData()

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", Integer, nullable=False),
    Column("body", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    Column("headers", JSON().with_variant(JSONB, "postgresql"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
)


def scoped_key(owner: str, key: str) -> str:
    """The stored key of `owner`'s Idempotency-Key: 64 hex digits, always within the column."""
    # A JSON pair, not a concatenation: ("a:b", "c") and ("a", "b:c") must not share a row.
    pair = json.dumps([owner, key], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(pair.encode()).hexdigest()


class KeyAlreadyRecorded(Exception):
    """Another request with this key committed first; replay its response."""


@dataclass(frozen=True)
class StoredResponse:
    """The first response to a key: what a retry gets back."""

    fingerprint: str
    status: int
    body: Any
    headers: dict[str, str]


class IdempotencyKeys:
    """The idempotency_keys table in the event log's database."""

    def __init__(self, engine: Engine, ttl_seconds: int) -> None:
        self.engine = engine
        self.ttl = timedelta(seconds=ttl_seconds)

    def create_schema(self) -> None:
        """Create the table if missing (safe from several processes)."""
        create_tables(self.engine, metadata)

    def lookup(self, key: str, conn: Connection | None = None) -> StoredResponse | None:
        """The unexpired stored response for a key, if any."""
        query = (
            select(idempotency_keys)
            .where(idempotency_keys.c.key == key)
            .where(idempotency_keys.c.expires_at > datetime.now(UTC))
        )
        if conn is None:
            try:
                with self.engine.connect() as own:
                    row = own.execute(query).mappings().first()
            except OperationalError as exc:  # the database is down or restarting: a 503
                raise unavailable(exc) from exc
        else:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return StoredResponse(row["fingerprint"], row["status"], row["body"], row["headers"])

    def claim(self, conn: Connection, key: str) -> None:
        """Under the write lock: clear the key's expired record, and raise KeyAlreadyRecorded
        if an unexpired one remains."""
        table = idempotency_keys
        now = datetime.now(UTC)
        conn.execute(delete(table).where(table.c.key == key).where(table.c.expires_at <= now))
        if self.lookup(key, conn) is not None:
            raise KeyAlreadyRecorded(key)

    def record(self, conn: Connection, key: str, response: StoredResponse) -> None:
        """Store a key's first response until it expires; now and then purge expired keys."""
        now = datetime.now(UTC)
        conn.execute(
            insert(idempotency_keys).values(
                key=key,
                fingerprint=response.fingerprint,
                status=response.status,
                body=response.body,
                headers=response.headers,
                created_at=now,
                expires_at=now + self.ttl,
            )
        )
        if random.random() < PURGE_CHANCE:
            conn.execute(delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now))
