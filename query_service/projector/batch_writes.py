"""A batch's row changes kept in memory and written with one executemany per table.

Per-event statements cost more than the projection itself (bench/analysis.md, point 5), so a
batch reads the rows of the streams it touches once, applies its events to them in memory and
writes the results at `flush`: new rows with one INSERT per table, advanced rows with one
version-checked UPDATE per table, counters with one upsert per table.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, Table, insert

from query_service.projection.accounts import AccountChanges, AccountRow
from query_service.projection.events import Event, OrderEventBase
from query_service.projection.orders import OrderRow, RowChanges
from query_service.read_model.account_writer import advance_account_statement, load_accounts
from query_service.read_model.order_writer import add_counters, advance_order_statement, load_orders
from query_service.read_model.tables import (
    STATUS_COUNT_COLUMNS,
    account_statement,
    accounts,
    order_history,
    order_lines,
    orders,
)

CUSTOMER_COUNTERS = ("order_count", "total_cents", *STATUS_COUNT_COLUMNS.values())
PRODUCT_COUNTERS = ("units_sold", "amount_cents", "order_count")
ORDER_ADVANCE_COLUMNS = ("status", "updated_at", "version")
ACCOUNT_ADVANCE_COLUMNS = (
    "balance_cents",
    "deposited_cents",
    "debited_cents",
    "credited_cents",
    "updated_at",
    "version",
)


class ClaimLost(Exception):
    """A row changed under the batch (another writer): redo the batch event by event."""


class PendingWrites:
    """The current order and account rows of a batch, and every row it has yet to write."""

    def __init__(self, conn: Connection, starts_empty: bool = False) -> None:
        self.conn = conn
        # A rebuild starts from empty tables: a stream not seen yet has no row to read.
        self.starts_empty = starts_empty
        self.orders: dict[str, OrderRow | None] = {}
        self.accounts: dict[str, AccountRow | None] = {}
        # The version stored in the database (0: no row), what a flush claims against.
        self._stored_orders: dict[str, int] = {}
        self._stored_accounts: dict[str, int] = {}
        # The rows changed since the last flush: a rebuild keeps every row, and looking at all
        # of them at each flush grew with the log.
        self._changed_orders: set[str] = set()
        self._changed_accounts: set[str] = set()
        self._lines: list[tuple[Any, ...]] = []
        self._history: list[tuple[Any, ...]] = []
        self._statement: list[tuple[Any, ...]] = []
        self._customers: dict[str, Counter[str]] = defaultdict(Counter)
        self._products: dict[str, Counter[str]] = defaultdict(Counter)

    def prefetch(self, events: Iterable[Event]) -> None:
        """Read the rows of every stream the events touch that is not known yet, in bulk."""
        order_ids: set[str] = set()
        customer_ids: set[str] = set()
        for event in events:
            if isinstance(event, OrderEventBase):
                order_ids.add(event.order_id)
            else:
                customer_ids.add(event.customer_id)
        self._remember_orders(order_ids.difference(self.orders))
        self._remember_accounts(customer_ids.difference(self.accounts))

    def order(self, order_id: str) -> OrderRow | None:
        """The order's current row in this batch (None: no such order yet)."""
        if order_id not in self.orders:
            self._remember_orders({order_id})
        return self.orders[order_id]

    def account(self, customer_id: str) -> AccountRow | None:
        """The account's current row in this batch (None: no such account yet)."""
        if customer_id not in self.accounts:
            self._remember_accounts({customer_id})
        return self.accounts[customer_id]

    def record_order(self, changes: RowChanges) -> None:
        """Take an order event's changes; its rows are written by the next flush."""
        order_id = changes.order.order_id
        self.orders[order_id] = changes.order
        self._changed_orders.add(order_id)
        self._lines.extend(changes.lines)
        self._history.append(changes.history)
        self.count(changes)

    def record_account(self, changes: AccountChanges) -> None:
        """Take an account event's changes; its rows are written by the next flush."""
        customer_id = changes.account.customer_id
        self.accounts[customer_id] = changes.account
        self._changed_accounts.add(customer_id)
        if changes.statement_line is not None:
            self._statement.append(changes.statement_line)

    def count(self, changes: RowChanges) -> None:
        """Add an order event's customer and product deltas to the batch's counters."""
        customer = self._customers[changes.customer.customer_id]
        customer["order_count"] += changes.customer.orders
        customer["total_cents"] += changes.customer.total_cents
        for status, delta in changes.customer.by_status.items():
            customer[STATUS_COUNT_COLUMNS[status]] += delta
        for product in changes.products:
            sales = self._products[product.product_id]
            sales["units_sold"] += product.units
            sales["amount_cents"] += product.amount_cents
            sales["order_count"] += product.orders

    def flush(self) -> None:
        """Write every pending change; raises ClaimLost if a stream row moved meanwhile."""
        # Stream rows first: they are the claims, and the other rows hang on them.
        self._write_streams(
            orders,
            self.orders,
            self._changed_orders,
            self._stored_orders,
            advance_order_statement(self.conn),
        )
        self._write_streams(
            accounts,
            self.accounts,
            self._changed_accounts,
            self._stored_accounts,
            advance_account_statement(self.conn),
        )
        for table, rows in (
            (order_lines, self._lines),
            (order_history, self._history),
            (account_statement, self._statement),
        ):
            insert_rows(self.conn, table, rows)
            rows.clear()
        add_counters(
            self.conn,
            {key: _all_columns(c, CUSTOMER_COUNTERS) for key, c in self._customers.items()},
            {key: _all_columns(c, PRODUCT_COUNTERS) for key, c in self._products.items()},
        )
        self._customers.clear()
        self._products.clear()

    def _write_streams(
        self,
        table: Table,
        current: dict[str, Any],
        changed: set[str],
        stored: dict[str, int],
        advance: Executable,
    ) -> None:
        advance_columns = ORDER_ADVANCE_COLUMNS if table is orders else ACCOUNT_ADVANCE_COLUMNS
        key_name = table.primary_key.columns[0].name
        new: list[tuple[Any, ...]] = []
        advanced: list[dict[str, Any]] = []
        # Sorted, so that concurrent writers lock rows in the same order and cannot deadlock.
        for key in sorted(changed):
            row = current[key]
            stored_version = stored.get(key, 0)
            if row is None or row.version == stored_version:
                continue
            if stored_version == 0:
                new.append(row)
            else:
                values = row._asdict()
                moved = {f"p_{name}": values[name] for name in advance_columns}
                advanced.append(
                    {**moved, f"p_{key_name}": key, "p_previous_version": stored_version}
                )
            stored[key] = row.version
        changed.clear()
        # A row another writer inserted meanwhile fails the batch with IntegrityError.
        insert_rows(self.conn, table, new)
        if advanced and execute_many(self.conn, advance, advanced) != len(advanced):
            raise ClaimLost(f"a row of {table.name} was advanced by another writer")

    def _remember_orders(self, order_ids: set[str]) -> None:
        found = {} if self.starts_empty or not order_ids else load_orders(self.conn, order_ids)
        for order_id in order_ids:
            row = found.get(order_id)
            self.orders[order_id] = row
            self._stored_orders[order_id] = row.version if row else 0

    def _remember_accounts(self, customer_ids: set[str]) -> None:
        found = (
            {} if self.starts_empty or not customer_ids else load_accounts(self.conn, customer_ids)
        )
        for customer_id in customer_ids:
            row = found.get(customer_id)
            self.accounts[customer_id] = row
            self._stored_accounts[customer_id] = row.version if row else 0


def execute_many(conn: Connection, statement: Executable, rows: Sequence[dict[str, Any]]) -> int:
    """Run a statement once per row with the driver's executemany; the rows it changed.

    SQLAlchemy's own executemany processes each row's parameters in Python, which cost more
    than SQLite's insert; here only the columns that need it (timestamps) are converted, with
    the very processors SQLAlchemy would apply, so the stored values are the same.
    """
    if not rows:
        return 0
    driver = _compile(statement, conn.dialect)
    return _execute_driver(conn, driver, [driver.values_of(row) for row in rows])


def insert_rows(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT rows given as tuples in the table's column order (the projections' row types)."""
    if not rows:
        return
    driver = _compile(insert_statement(table), conn.dialect)
    if driver.names != tuple(table.columns.keys()):
        columns = tuple(table.columns.keys())
        in_driver_order = itemgetter(*(columns.index(name) for name in driver.names))
        rows = [in_driver_order(row) for row in rows]
    _execute_driver(conn, driver, rows)


def _execute_driver(conn: Connection, driver: _DriverStatement, params: Sequence[Any]) -> int:
    if driver.processors:
        columns = list(zip(*params, strict=True))
        # Per type: one instant often recurs (created_at and updated_at, events of one append).
        converted: dict[type, dict[Any, Any]] = {}
        for index, processor, kind in driver.processors:
            memo = converted.setdefault(kind, {})
            columns[index] = tuple(_convert(processor, columns[index], memo))
        params = list(zip(*columns, strict=True))
    if not driver.positional:
        params = [dict(zip(driver.names, values, strict=True)) for values in params]
    result = conn.exec_driver_sql(driver.sql, params)
    if not conn.dialect.supports_sane_multi_rowcount:
        return len(params)
    return int(result.rowcount)


def _convert(
    processor: Callable[[Any], Any], values: Iterable[Any], converted: dict[Any, Any]
) -> Iterator[Any]:
    for value in values:
        result = converted.get(value)
        if result is None:
            result = converted[value] = processor(value)
        yield result


@dataclass(frozen=True)
class _DriverStatement:
    """A statement compiled for one dialect: its SQL, parameter order and value conversion."""

    sql: str
    names: tuple[str, ...]
    positional: bool
    values_of: Callable[[dict[str, Any]], tuple[Any, ...]]
    processors: tuple[tuple[int, Callable[[Any], Any], type], ...]  # index, processor, type


@functools.cache
def insert_statement(table: Table) -> Executable:
    """INSERT of every column of the table (one object per table, so its compilation is cached)."""
    return insert(table)


@functools.cache
def _compile(statement: Any, dialect: Dialect) -> _DriverStatement:
    compiled = statement.compile(dialect=dialect)
    names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.binds)
    if len(names) < 2:
        raise ValueError("execute_many takes statements of two or more parameters")
    types = [compiled.binds[name].type for name in names]
    processors = (
        (index, type_.dialect_impl(dialect).bind_processor(dialect), type(type_))
        for index, type_ in enumerate(types)
    )
    return _DriverStatement(
        sql=compiled.string,
        names=names,
        positional=compiled.positional,
        values_of=itemgetter(*names),
        processors=tuple((index, p, kind) for index, p, kind in processors if p is not None),
    )


def _all_columns(counts: Counter[str], columns: tuple[str, ...]) -> dict[str, int]:
    return {column: counts[column] for column in columns}
