"""Bulk statements at the driver level: one executemany per table, without SQLAlchemy's
per-row parameter processing (it cost more than SQLite's insert itself).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Dialect, Executable, Table, insert


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
    insert_rows_with(conn, insert_statement(table), table, rows)


def insert_rows_with(
    conn: Connection, statement: Executable, table: Table, rows: Sequence[tuple[Any, ...]]
) -> None:
    """Like insert_rows, with an INSERT of every column of the table of one's own (an upsert)."""
    if not rows:
        return
    driver = _compile(statement, conn.dialect)
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
