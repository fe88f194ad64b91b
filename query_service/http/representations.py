"""Read-model rows -> JSON bodies: money as integer cents plus a decimal string, UTC ISO times."""

from __future__ import annotations

from typing import Any

from sqlalchemy import RowMapping

from query_service.projection.orders import format_cents
from query_service.read_model.event_offsets import StreamOffsets
from query_service.read_model.tables import STATUS_COUNT_COLUMNS
from query_service.read_model.view_types import CustomerView, OrderDetail
from shared.contract.envelope import format_timestamp


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
    """One applied event of an order, and who caused it (null for events from before that)."""
    return {
        "version": row["version"],
        "type": row["event_type"],
        "occurred_at": format_timestamp(row["occurred_at"]),
        "summary": row["summary"],
        "event_id": row["event_id"],
        "position": row["position"],
        "by": _actor(row),
    }


def stream_messages(found: StreamOffsets) -> dict[str, Any]:
    """A stream's applied version and the Kafka message of each event that has one."""
    return {
        "stream_id": found.stream_id,
        "version": found.applied_version,
        "messages": [
            {
                "version": row.version,
                "event_id": row.event_id,
                "topic": row.topic,
                "partition": row.kafka_partition,
                "offset": row.kafka_offset,
            }
            for row in found.offsets
        ],
    }


def _actor(row: RowMapping) -> dict[str, Any] | None:
    if row["by_sub"] is None:
        return None
    return {
        "sub": row["by_sub"],
        "iss": row["by_iss"],
        "customer_id": row["by_customer_id"],
        "client_id": row["by_client_id"],
    }


def customer_summary(customer: CustomerView) -> dict[str, Any]:
    """A customer's order counts (the total covers orders not cancelled) and balance, if any."""
    row = customer.summary
    account = customer.account
    return {
        "customer_id": customer.customer_id,
        "order_count": row["order_count"] if row else 0,
        "orders_by_status": {
            status: row[column] if row else 0 for status, column in STATUS_COUNT_COLUMNS.items()
        },
        **_money("total", row["total_cents"] if row else 0),
        "account": _money("balance", account["balance_cents"]) if account else None,
    }


def account(row: RowMapping) -> dict[str, Any]:
    """A customer's account: balance = deposited - debited + credited."""
    return {
        "customer_id": row["customer_id"],
        **_money("balance", row["balance_cents"]),
        **_money("deposited", row["deposited_cents"]),
        **_money("debited", row["debited_cents"]),
        **_money("credited", row["credited_cents"]),
        "version": row["version"],
        "opened_at": format_timestamp(row["opened_at"]),
        "updated_at": format_timestamp(row["updated_at"]),
    }


def statement_line(row: RowMapping) -> dict[str, Any]:
    """One money movement of an account; the amount is signed (a debit is negative)."""
    return {
        "version": row["version"],
        "occurred_at": format_timestamp(row["occurred_at"]),
        "kind": row["kind"],
        **_money("amount", row["amount_cents"]),
        **_money("balance", row["balance_cents"]),
        "order_id": row["order_id"],
        "deposit_id": row["deposit_id"],
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
