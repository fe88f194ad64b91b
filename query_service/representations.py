"""Read-model rows -> JSON bodies: money as integer cents plus a decimal string, UTC ISO times."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from query_service.projections import format_cents
from query_service.read_model import STATUS_COUNT_COLUMNS
from query_service.views import OrderDetail
from shared.envelope import format_timestamp


def order_summary(row: RowMapping) -> dict[str, Any]:
    """An order as listed."""
    return {
        "order_id": row["order_id"],
        "customer_id": row["customer_id"],
        "status": row["status"],
        "version": row["version"],
        "line_count": row["line_count"],
        "total_quantity": row["total_quantity"],
        **_money("total", row["total_cents"]),
        "created_at": format_timestamp(row["created_at"]),
        "updated_at": format_timestamp(row["updated_at"]),
    }


def order_detail(detail: OrderDetail) -> dict[str, Any]:
    """An order with its lines."""
    return {
        **order_summary(detail.order),
        "lines": [
            {
                "line_no": line["line_no"],
                "product_id": line["product_id"],
                "quantity": line["quantity"],
                **_money("unit_price", line["unit_price_cents"]),
                **_money("amount", line["amount_cents"]),
            }
            for line in detail.lines
        ],
    }


def history_entry(row: RowMapping) -> dict[str, Any]:
    """One applied event of an order."""
    return {
        "version": row["version"],
        "type": row["event_type"],
        "occurred_at": format_timestamp(row["occurred_at"]),
        "summary": row["summary"],
        "event_id": row["event_id"],
        "position": row["position"],
    }


def customer_summary(row: RowMapping) -> dict[str, Any]:
    """A customer's order counts; the total covers orders that are not cancelled."""
    return {
        "customer_id": row["customer_id"],
        "order_count": row["order_count"],
        "orders_by_status": {
            status: row[column] for status, column in STATUS_COUNT_COLUMNS.items()
        },
        **_money("total", row["total_cents"]),
    }


def product_sales(row: RowMapping) -> dict[str, Any]:
    """A product's sales over orders that are not cancelled."""
    return {
        "product_id": row["product_id"],
        "units_sold": row["units_sold"],
        **_money("amount", row["amount_cents"]),
        "order_count": row["order_count"],
    }


def _money(name: str, cents: int) -> dict[str, Any]:
    return {f"{name}_cents": cents, name: format_cents(cents)}
