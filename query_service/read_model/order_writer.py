"""Writes to the read model inside the caller's transaction: row changes, tracking, parking.

Statements are built once per dialect and executed with parameters (building them per event
cost more than running them). Counters are added with INSERT .. ON CONFLICT DO UPDATE on
SQLite and PostgreSQL; the order row is claimed first with a version-checked write, so two
projectors racing on one event (a zombie after a rebalance) cannot both apply it.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable, Table, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from query_service.projection.orders import OrderRow, RowChanges
from query_service.read_model.tables import (
    customer_summaries,
    order_history,
    order_lines,
    orders,
    parked_events,
    product_sales,
    projector_positions,
)

# Ids per SELECT .. IN (...): well below every database's limit on bound parameters.
LOAD_CHUNK = 500
RowT = TypeVar("RowT")


@dataclass(frozen=True)
class ParkedEvent:
    """A message or event the projection could not apply, with where it came from and why."""

    origin: str  # "kafka", "gap-repair" or "rebuild"
    error: str
    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    key: bytes | None = None
    value: bytes | None = None
    headers: Sequence[tuple[str, bytes | None]] = ()
    event_id: str | None = None
    stream_id: str | None = None  # an order id or account:<customer_id>


def load_order(conn: Connection, order_id: str) -> OrderRow | None:
    """The order's row (locked for update where the database supports it), or None."""
    row = conn.execute(_statements(conn).load_order, {"p_order_id": order_id}).mappings().first()
    return OrderRow(**row) if row else None


def load_orders(conn: Connection, order_ids: Iterable[str]) -> dict[str, OrderRow]:
    """The rows of the orders that exist among `order_ids` (locked for update where supported)."""
    return load_locked_rows(conn, orders, "order_id", order_ids, OrderRow)


def load_locked_rows(
    conn: Connection,
    table: Table,
    key: str,
    ids: Iterable[str],
    make_row: Callable[..., RowT],
) -> dict[str, RowT]:
    """The rows of `table` whose `key` is among `ids`, by key (locked where supported)."""
    found: dict[str, RowT] = {}
    wanted = sorted(ids)  # sorted: concurrent writers lock rows in the same order
    column = table.c[key]
    for start in range(0, len(wanted), LOAD_CHUNK):
        chunk = wanted[start : start + LOAD_CHUNK]
        query = select(table).where(column.in_(chunk)).order_by(column).with_for_update()
        for row in conn.execute(query).mappings():
            found[row[key]] = make_row(**row)
    return found


def advance_order_statement(conn: Connection) -> Executable:
    """The version-checked UPDATE that claims an order's next versions (p_* parameters)."""
    return _statements(conn).advance_order


def write_order_changes(conn: Connection, changes: RowChanges) -> bool:
    """Claim the event's version on the order row, then add its lines and history row.

    False (nothing written) if another writer claimed that version first. Customer and
    product counters are left to `add_counters`, so a batch adds them once per row.
    """
    statements = _statements(conn)
    order = changes.order
    if changes.is_new_order:
        # RETURNING, not rowcount: drivers do not agree on rowcount for ON CONFLICT DO NOTHING.
        inserted = conn.execute(statements.insert_order, order._asdict())
        claimed = (inserted.first() is not None) if inserted.returns_rows else True
    else:
        advanced = conn.execute(
            statements.advance_order,
            {
                "p_order_id": order.order_id,
                "p_previous_version": order.version - 1,
                "p_status": order.status,
                "p_updated_at": order.updated_at,
                "p_version": order.version,
            },
        )
        claimed = advanced.rowcount == 1
    if not claimed:
        return False
    if changes.lines:
        conn.execute(insert(order_lines), [line._asdict() for line in changes.lines])
    conn.execute(insert(order_history), changes.history._asdict())
    return True


def add_counters(
    conn: Connection,
    customers: Mapping[str, Mapping[str, int]],
    products: Mapping[str, Mapping[str, int]],
) -> None:
    """Add counter deltas (column -> amount) to customer and product rows, creating them."""
    # Sorted, so that concurrent writers lock rows in the same order and cannot deadlock.
    statements = _statements(conn)
    for statement, table, key, deltas in (
        (statements.add_to_customer, customer_summaries, "customer_id", customers),
        (statements.add_to_product, product_sales, "product_id", products),
    ):
        rows = [{key: name, **deltas[name]} for name in sorted(deltas)]
        if not rows:
            continue
        if statement is None:
            for row in rows:
                _add_portably(conn, table, key, row)
        else:
            conn.execute(statement, rows)


def load_positions(conn: Connection, topic: str) -> dict[int, int]:
    """partition -> next offset to consume, as committed with the read model."""
    table = projector_positions
    query = select(table.c.kafka_partition, table.c.next_offset).where(table.c.topic == topic)
    return {int(partition): int(offset) for partition, offset in conn.execute(query)}


def save_positions(conn: Connection, topic: str, next_offsets: Mapping[int, int]) -> None:
    """Record the next offset per partition; a position never moves backwards."""
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {"topic": topic, "kafka_partition": p, "next_offset": o, "updated_at": now}
        for p, o in sorted(next_offsets.items())
    ]
    statement = _statements(conn).save_position
    if statement is not None:
        conn.execute(statement, rows)
        return
    table = projector_positions
    stored = load_positions(conn, topic)
    for row in rows:
        if row["kafka_partition"] not in stored:
            conn.execute(insert(table), row)
        elif stored[row["kafka_partition"]] < row["next_offset"]:
            conn.execute(
                update(table)
                .where(table.c.topic == topic, table.c.kafka_partition == row["kafka_partition"])
                .values(next_offset=row["next_offset"], updated_at=now)
            )


def park(conn: Connection, parked: ParkedEvent) -> bool:
    """Keep an unprojectable message; False if this very message was parked before."""
    table = parked_events
    if parked.offset is not None:
        seen = select(table.c.id).where(
            table.c.origin == parked.origin,
            table.c.topic == parked.topic,
            table.c.kafka_partition == parked.partition,
            table.c.kafka_offset == parked.offset,
        )
    else:
        seen = select(table.c.id).where(
            table.c.origin == parked.origin, table.c.event_id == parked.event_id
        )
    identified = parked.event_id is not None or parked.offset is not None
    earlier = conn.execute(seen.limit(1)).scalar() if identified else None
    if earlier is not None:
        conn.execute(
            update(table).where(table.c.id == earlier).values(last_seen_at=datetime.now(UTC))
        )
        return False
    conn.execute(
        insert(table),
        {
            "parked_at": datetime.now(UTC),
            "origin": parked.origin,
            "topic": parked.topic,
            "kafka_partition": parked.partition,
            "kafka_offset": parked.offset,
            "event_id": parked.event_id,
            "order_id": parked.stream_id,
            "message_key": parked.key,
            "message_value": parked.value,
            "headers": [
                [name, None if value is None else base64.b64encode(value).decode()]
                for name, value in parked.headers
            ],
            "error": parked.error,
        },
    )
    return True


@dataclass(frozen=True)
class _Statements:
    """The hot statements of one dialect; None where the dialect has no upsert."""

    load_order: Executable
    insert_order: Executable
    advance_order: Executable
    add_to_customer: Executable | None
    add_to_product: Executable | None
    save_position: Executable | None


def _statements(conn: Connection) -> _Statements:
    return _build_statements(conn.dialect.name)


@functools.cache
def _build_statements(dialect: str) -> _Statements:
    advance_order = (
        update(orders)
        .where(
            orders.c.order_id == bindparam("p_order_id"),
            orders.c.version == bindparam("p_previous_version"),
        )
        .values(
            status=bindparam("p_status"),
            updated_at=bindparam("p_updated_at"),
            version=bindparam("p_version"),
        )
    )
    load_order = (
        select(orders).where(orders.c.order_id == bindparam("p_order_id")).with_for_update()
    )
    if dialect not in ("sqlite", "postgresql"):
        return _Statements(load_order, insert(orders), advance_order, None, None, None)
    module: Any = sqlite if dialect == "sqlite" else postgresql
    positions = module.insert(projector_positions)
    return _Statements(
        load_order=load_order,
        insert_order=module.insert(orders)
        .on_conflict_do_nothing(index_elements=["order_id"])
        .returning(orders.c.order_id),
        advance_order=advance_order,
        add_to_customer=_adding_upsert(module, customer_summaries, "customer_id"),
        add_to_product=_adding_upsert(module, product_sales, "product_id"),
        save_position=positions.on_conflict_do_update(
            index_elements=["topic", "kafka_partition"],
            set_={
                "next_offset": positions.excluded.next_offset,
                "updated_at": positions.excluded.updated_at,
            },
            where=projector_positions.c.next_offset < positions.excluded.next_offset,
        ),
    )


def _adding_upsert(module: Any, table: Table, key: str) -> Executable:
    """INSERT the row, or add its values to the existing row's counters."""
    statement = module.insert(table)
    counters = [column.name for column in table.columns if column.name != key]
    upsert: Executable = statement.on_conflict_do_update(
        index_elements=[key],
        set_={name: table.c[name] + statement.excluded[name] for name in counters},
    )
    return upsert


def _add_portably(conn: Connection, table: Table, key: str, row: dict[str, Any]) -> None:
    # Databases without an upsert: update the counters, insert when there was nothing to update.
    counters = {name: table.c[name] + value for name, value in row.items() if name != key}
    updated = conn.execute(update(table).where(table.c[key] == row[key]).values(counters))
    if updated.rowcount == 0:
        conn.execute(insert(table), row)
