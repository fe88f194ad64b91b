"""What the read model's views answer with: filters, pages, and the shapes of one order or
customer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from sqlalchemy import RowMapping

from query_service.read_model.pagination import Cursor, StatementCursor


@dataclass(frozen=True)
class OrderFilter:
    """Filters of an order listing; created_after is inclusive, created_before exclusive."""

    status: str | None = None
    customer_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


CursorT = TypeVar("CursorT", Cursor, StatementCursor)


@dataclass(frozen=True)
class Page(Generic[CursorT]):
    """One page of a listing, and the cursor of the next one (None on the last page)."""

    rows: list[RowMapping]
    next_cursor: CursorT | None


@dataclass(frozen=True)
class OrderDetail:
    """An order row with its lines."""

    order: RowMapping
    lines: list[RowMapping]


@dataclass(frozen=True)
class OrderHistory:
    """An order's history rows, oldest first, and the customer of the order they belong to."""

    customer_id: str
    rows: list[RowMapping]


@dataclass(frozen=True)
class CustomerView:
    """What the read model knows of a customer: order summary, account, or both."""

    customer_id: str  # as stored in those rows
    summary: RowMapping | None  # None: no orders yet
    account: RowMapping | None  # None: no account
