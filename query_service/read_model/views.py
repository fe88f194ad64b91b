"""Read queries over the read model: each answers one question with one or two plain SELECTs."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Engine, RowMapping, and_, func, or_, select

from query_service.read_model.changes import (
    RowWait,
    VersionWaits,
    Visible,
    WaiterSlots,
    wait_for_version,
)
from query_service.read_model.event_offsets import StreamOffsets, read_stream_offsets
from query_service.read_model.pagination import Cursor, StatementCursor
from query_service.read_model.tables import (
    account_statement,
    accounts,
    customer_summaries,
    order_history,
    order_lines,
    orders,
    parked_events,
    product_sales,
    projector_positions,
)
from query_service.read_model.view_types import (
    CustomerView,
    OrderDetail,
    OrderFilter,
    OrderHistory,
    Page,
)
from shared.infra.config import DEFAULT_MAX_WAITERS


def _anyone(_customer_id: str) -> bool:
    return True


class ReadViews:
    """The queries the HTTP API serves; each opens a short read-only connection."""

    def __init__(self, engine: Engine, max_waiters: int = DEFAULT_MAX_WAITERS) -> None:
        self.engine = engine
        self.order_waits = VersionWaits(engine, _order_versions)
        self.account_waits = VersionWaits(engine, _account_versions)
        # One pool for both kinds of wait: together they must leave threads for other reads.
        self.waiter_slots = WaiterSlots(max_waiters)

    def list_orders(self, filters: OrderFilter, after: Cursor | None, limit: int) -> Page[Cursor]:
        """Orders newest first (ties broken by order id, descending), `limit` per page."""
        query = select(orders).where(*_filter_conditions(filters))
        if after is not None:
            query = query.where(
                or_(
                    orders.c.created_at < after.created_at,
                    and_(
                        orders.c.created_at == after.created_at,
                        orders.c.order_id < after.order_id,
                    ),
                )
            )
        query = query.order_by(orders.c.created_at.desc(), orders.c.order_id.desc())
        with self.engine.connect() as conn:
            rows = list(conn.execute(query.limit(limit + 1)).mappings())
        if len(rows) <= limit:
            return Page(rows, None)
        last = rows[limit - 1]
        return Page(rows[:limit], Cursor(last["created_at"], last["order_id"]))

    def order(self, order_id: str) -> OrderDetail | None:
        """The order and its lines, read in one transaction (a consistent pair)."""
        with self.engine.connect() as conn, conn.begin():
            return _order_detail(conn, order_id)

    def order_version(self, order_id: str) -> int | None:
        """The last applied version of an order, or None if it is not projected yet."""
        with self.engine.connect() as conn:
            version = conn.scalar(select(orders.c.version).where(orders.c.order_id == order_id))
        return None if version is None else int(version)

    def wait_for_order(
        self, order_id: str, min_version: int, max_wait_s: float, visible: Visible = _anyone
    ) -> tuple[OrderDetail | None, bool]:
        """Wait until the order reaches min_version or time runs out; (detail, reached?).

        Raises TooManyWaiters; an order `visible` refuses is answered as a missing one.
        """
        return wait_for_version(
            self.order_waits,
            self.waiter_slots,
            RowWait(order_id, min_version, max_wait_s, visible),
            lambda: self.order(order_id),
            lambda detail: detail.order,
        )

    def history(self, order_id: str) -> list[RowMapping]:
        """One row per applied event of the order, oldest first ([] if unknown)."""
        with self.engine.connect() as conn:
            return _history_rows(conn, order_id)

    def history_of(self, order_id: str) -> OrderHistory | None:
        """The order's history with its customer, read in one transaction; None if unknown."""
        owner = select(orders.c.customer_id).where(orders.c.order_id == order_id)
        with self.engine.connect() as conn, conn.begin():
            customer_id = conn.scalar(owner)
            rows = _history_rows(conn, order_id)
        if customer_id is None or not rows:
            return None
        return OrderHistory(customer_id, rows)

    def stream_offsets(self, stream_id: str) -> StreamOffsets | None:
        """Where the stream's events are on the topic, as far as known; None if unknown."""
        with self.engine.connect() as conn, conn.begin():
            return read_stream_offsets(conn, stream_id)

    def customer(self, customer_id: str) -> CustomerView | None:
        """A customer's order summary and account, or None if they have neither."""
        query = select(customer_summaries).where(customer_summaries.c.customer_id == customer_id)
        with self.engine.connect() as conn, conn.begin():
            summary = conn.execute(query).mappings().first()
            account = _account(conn, customer_id)
        stored = summary if summary is not None else account
        if stored is None:
            return None
        return CustomerView(stored["customer_id"], summary, account)

    def account(self, customer_id: str) -> RowMapping | None:
        """A customer's account row, or None if they have no account."""
        with self.engine.connect() as conn:
            return _account(conn, customer_id)

    def account_version(self, customer_id: str) -> int | None:
        """The last applied version of an account, or None if it is not projected yet."""
        query = select(accounts.c.version).where(accounts.c.customer_id == customer_id)
        with self.engine.connect() as conn:
            version = conn.scalar(query)
        return None if version is None else int(version)

    def wait_for_account(
        self, customer_id: str, min_version: int, max_wait_s: float, visible: Visible = _anyone
    ) -> tuple[RowMapping | None, bool]:
        """Wait until the account reaches min_version or time runs out; (row, reached?).

        Raises TooManyWaiters; an account `visible` refuses is answered as a missing one.
        """
        return wait_for_version(
            self.account_waits,
            self.waiter_slots,
            RowWait(customer_id, min_version, max_wait_s, visible),
            lambda: self.account(customer_id),
            lambda row: row,
        )

    def statement(
        self,
        customer_id: str,
        after: StatementCursor | None,
        limit: int,
        visible: Visible = _anyone,
    ) -> Page[StatementCursor] | None:
        """Statement lines oldest first, `limit` per page; None if there is no such account
        (or `visible` refuses the account found)."""
        query = select(account_statement).where(account_statement.c.customer_id == customer_id)
        if after is not None:
            query = query.where(account_statement.c.version > after.version)
        query = query.order_by(account_statement.c.version).limit(limit + 1)
        # One transaction, as for an order and its lines: the lines belong to the row found.
        with self.engine.connect() as conn, conn.begin():
            account = _account(conn, customer_id)
            if account is None or not visible(account["customer_id"]):
                return None
            rows = list(conn.execute(query).mappings())
        if len(rows) <= limit:
            return Page(rows, None)
        return Page(rows[:limit], StatementCursor(rows[limit - 1]["version"]))

    def product(self, product_id: str) -> RowMapping | None:
        """A product's sales row, or None if it was never ordered."""
        query = select(product_sales).where(product_sales.c.product_id == product_id)
        with self.engine.connect() as conn:
            return conn.execute(query).mappings().first()

    def top_products(self, by: str, limit: int) -> list[RowMapping]:
        """Best sellers by units or amount (cancelled orders excluded); ties by product id."""
        column = product_sales.c.units_sold if by == "units" else product_sales.c.amount_cents
        query = (
            select(product_sales)
            .where(column > 0)
            .order_by(column.desc(), product_sales.c.product_id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def positions(self, topic: str) -> list[RowMapping]:
        """The projector's stored next offset per partition of the topic."""
        query = (
            select(projector_positions)
            .where(projector_positions.c.topic == topic)
            .order_by(projector_positions.c.kafka_partition)
        )
        with self.engine.connect() as conn:
            return list(conn.execute(query).mappings())

    def parked_count(self) -> int:
        """How many parked events wait for an operator."""
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(parked_events)) or 0)


def _history_rows(conn: Connection, order_id: str) -> list[RowMapping]:
    query = (
        select(order_history)
        .where(order_history.c.order_id == order_id)
        .order_by(order_history.c.version)
    )
    return list(conn.execute(query).mappings())


def _order_versions(conn: Connection, order_ids: Collection[str]) -> dict[str, int]:
    query = select(orders.c.order_id, orders.c.version).where(orders.c.order_id.in_(order_ids))
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def _account_versions(conn: Connection, customer_ids: Collection[str]) -> dict[str, int]:
    query = select(accounts.c.customer_id, accounts.c.version).where(
        accounts.c.customer_id.in_(customer_ids)
    )
    return {row[0]: int(row[1]) for row in conn.execute(query)}


def _account(conn: Connection, customer_id: str) -> RowMapping | None:
    query = select(accounts).where(accounts.c.customer_id == customer_id)
    return conn.execute(query).mappings().first()


def _order_detail(conn: Connection, order_id: str) -> OrderDetail | None:
    order = conn.execute(select(orders).where(orders.c.order_id == order_id)).mappings().first()
    if order is None:
        return None
    lines = conn.execute(
        select(order_lines)
        .where(order_lines.c.order_id == order_id)
        .order_by(order_lines.c.line_no)
    ).mappings()
    return OrderDetail(order, list(lines))


def _filter_conditions(filters: OrderFilter) -> list[Any]:
    conditions: list[Any] = []
    if filters.status is not None:
        conditions.append(orders.c.status == filters.status)
    if filters.customer_id is not None:
        conditions.append(orders.c.customer_id == filters.customer_id)
    if filters.created_after is not None:
        conditions.append(orders.c.created_at >= filters.created_after)
    if filters.created_before is not None:
        conditions.append(orders.c.created_at < filters.created_before)
    return conditions
