"""A batch's row changes kept in memory and written with one executemany per table.

Per-event statements cost more than the projection itself (bench/analysis.md, point 5), so a
batch reads the rows of the streams it touches once, applies its events to them in memory and
writes the results at `flush`: new rows with one INSERT per table, advanced rows with one
version-checked UPDATE per table, counters with one upsert per table.

`take` and `Writes.write` are the two halves of `flush`: what to write is decided from the
batch's rows, then written, so a caller could hand the writing to another connection.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Executable, Table

from query_service.projection.accounts import AccountChanges, AccountRow
from query_service.projection.events import Event, OrderEventBase
from query_service.projection.orders import OrderRow, RowChanges
from query_service.read_model.account_writer import advance_account_statement, load_accounts
from query_service.read_model.bulk_sql import execute_many, insert_rows
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

Rows = list[tuple[Any, ...]]


class ClaimLost(Exception):
    """A row changed under the batch (another writer): redo the batch event by event."""


@dataclass
class StreamWrites:
    """The stream rows (orders or accounts) of one flush: new ones, and advanced ones as claims."""

    new: Rows = field(default_factory=list)
    advanced: list[dict[str, Any]] = field(default_factory=list)

    def write(self, conn: Connection, table: Table, advance: Executable) -> None:
        """INSERT the new rows, then UPDATE the advanced ones if still at their stored version."""
        # A row another writer inserted meanwhile fails the batch with IntegrityError.
        insert_rows(conn, table, self.new)
        if self.advanced and execute_many(conn, advance, self.advanced) != len(self.advanced):
            raise ClaimLost(f"a row of {table.name} was advanced by another writer")


@dataclass
class Writes:
    """Every row one flush writes; made by `PendingWrites.take`, written by `write`."""

    orders: StreamWrites
    accounts: StreamWrites
    lines: Rows
    history: Rows
    statement: Rows
    customers: dict[str, dict[str, int]]
    products: dict[str, dict[str, int]]

    def write(self, conn: Connection) -> None:
        """Write them in the connection's transaction; raises ClaimLost if a claim failed."""
        # Stream rows first: they are the claims, and the other rows hang on them.
        self.orders.write(conn, orders, advance_order_statement(conn))
        self.accounts.write(conn, accounts, advance_account_statement(conn))
        insert_rows(conn, order_lines, self.lines)
        insert_rows(conn, order_history, self.history)
        insert_rows(conn, account_statement, self.statement)
        add_counters(conn, self.customers, self.products)


class PendingWrites:
    """The current order and account rows of a batch, and every row it has yet to write.

    starts_empty (a rebuild): the tables started empty and events come in log order, so an
    event at version 1 starts its stream and nothing is read for it. Rows untouched for a whole
    flush are then forgotten, which bounds memory on a long log; a later event of such a
    stream reads its row back.
    """

    def __init__(self, conn: Connection, starts_empty: bool = False) -> None:
        self.conn = conn
        self.starts_empty = starts_empty
        self.orders: dict[str, OrderRow | None] = {}
        self.accounts: dict[str, AccountRow | None] = {}
        # The version stored in the database (0: no row), what a flush claims against.
        self._stored_orders: dict[str, int] = {}
        self._stored_accounts: dict[str, int] = {}
        # Rows not touched since the last flush (starts_empty only): looked at before the
        # database, forgotten at the next flush.
        self._older_orders: dict[str, OrderRow | None] = {}
        self._older_accounts: dict[str, AccountRow | None] = {}
        # The rows changed since the last flush: looking at all of them grew with the log.
        self._changed_orders: set[str] = set()
        self._changed_accounts: set[str] = set()
        self._lines: Rows = []
        self._history: Rows = []
        self._statement: Rows = []
        self._customers: dict[str, Counter[str]] = defaultdict(Counter)
        self._products: dict[str, Counter[str]] = defaultdict(Counter)

    def prefetch(self, events: Iterable[Event]) -> None:
        """Read the rows of every stream the events touch that is not known yet, in bulk."""
        order_ids: set[str] = set()
        customer_ids: set[str] = set()
        for event in events:
            # A stream's first event in log order: it has no row (rebuilds only).
            first = self.starts_empty and event.version == 1
            if isinstance(event, OrderEventBase):
                if first and event.order_id not in self.orders:
                    self.orders[event.order_id] = None
                    self._stored_orders[event.order_id] = 0
                else:
                    order_ids.add(event.order_id)
            elif first and event.customer_id not in self.accounts:
                self.accounts[event.customer_id] = None
                self._stored_accounts[event.customer_id] = 0
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
        self.take().write(self.conn)

    def take(self) -> Writes:
        """Every pending change, to be written (in order) before the next `take` is."""
        writes = Writes(
            orders=_stream_writes(
                self.orders, self._changed_orders, self._stored_orders, "order_id"
            ),
            accounts=_stream_writes(
                self.accounts, self._changed_accounts, self._stored_accounts, "customer_id"
            ),
            lines=self._lines,
            history=self._history,
            statement=self._statement,
            customers={k: _all_columns(c, CUSTOMER_COUNTERS) for k, c in self._customers.items()},
            products={k: _all_columns(c, PRODUCT_COUNTERS) for k, c in self._products.items()},
        )
        self._lines, self._history, self._statement = [], [], []
        self._customers.clear()
        self._products.clear()
        if self.starts_empty:
            self._forget_untouched()
        return writes

    def _forget_untouched(self) -> None:
        for key in self._older_orders.keys() - self.orders.keys():
            del self._stored_orders[key]
        for key in self._older_accounts.keys() - self.accounts.keys():
            del self._stored_accounts[key]
        self._older_orders, self.orders = self.orders, {}
        self._older_accounts, self.accounts = self.accounts, {}

    def _remember_orders(self, order_ids: set[str]) -> None:
        recent = {key: self._older_orders.pop(key) for key in order_ids & self._older_orders.keys()}
        self.orders.update(recent)
        order_ids = order_ids.difference(recent)
        found = self._read(load_orders, order_ids)
        for order_id in order_ids:
            row = found.get(order_id)
            self.orders[order_id] = row
            self._stored_orders[order_id] = row.version if row else 0

    def _remember_accounts(self, customer_ids: set[str]) -> None:
        older = self._older_accounts
        recent = {key: older.pop(key) for key in customer_ids & older.keys()}
        self.accounts.update(recent)
        customer_ids = customer_ids.difference(recent)
        found = self._read(load_accounts, customer_ids)
        for customer_id in customer_ids:
            row = found.get(customer_id)
            self.accounts[customer_id] = row
            self._stored_accounts[customer_id] = row.version if row else 0

    def _read(
        self, load: Callable[[Connection, set[str]], dict[str, Any]], keys: set[str]
    ) -> dict[str, Any]:
        if not keys:
            return {}
        return load(self.conn, keys)


def _stream_writes(
    current: dict[str, Any], changed: set[str], stored: dict[str, int], key_name: str
) -> StreamWrites:
    """The changed stream rows as inserts (no stored row) and version-checked advances."""
    advance_columns = ORDER_ADVANCE_COLUMNS if key_name == "order_id" else ACCOUNT_ADVANCE_COLUMNS
    writes = StreamWrites()
    # Sorted, so that concurrent writers lock rows in the same order and cannot deadlock.
    for key in sorted(changed):
        row = current[key]
        stored_version = stored.get(key, 0)
        if row is None or row.version == stored_version:
            continue
        if stored_version == 0:
            writes.new.append(row)
        else:
            values = row._asdict()
            moved = {f"p_{name}": values[name] for name in advance_columns}
            writes.advanced.append(
                {**moved, f"p_{key_name}": key, "p_previous_version": stored_version}
            )
        stored[key] = row.version
    changed.clear()
    return writes


def _all_columns(counts: Counter[str], columns: tuple[str, ...]) -> dict[str, int]:
    return {column: counts[column] for column in columns}
