"""The read model's tables (SQLAlchemy Core): denormalized views of orders and accounts plus the
projector's tracking.

Every timestamp in the view tables comes from an event, never from the clock, so a rebuild
produces exactly the rows the live projection produced.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from query_service.projection.events import ORDER_STATUSES
from shared.infra.db import UTCDateTime, create_database_engine, create_tables

metadata = MetaData()

orders = Table(
    "orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("customer_id", String(64), nullable=False),
    Column("status", String(16), nullable=False),
    Column("line_count", Integer, nullable=False),
    Column("total_quantity", Integer, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # The last applied version: the per-order tracking record, written with the rows.
    Column("version", Integer, nullable=False),
    # Newest-first listings, whole or by customer or status, walk one of these indexes.
    Index("ix_orders_created", "created_at", "order_id"),
    Index("ix_orders_customer_created", "customer_id", "created_at", "order_id"),
    Index("ix_orders_status_created", "status", "created_at", "order_id"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
)

order_history = Table(
    "order_history",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_type", String(64), nullable=False),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("summary", String(200), nullable=False),
    # Who caused the event (metadata.principal); NULL for events stored before it was
    # recorded. Text: a token's claims have no length limit of their own. Nullable, so that
    # create_tables can add them to a read model made before they existed.
    Column("by_sub", Text),
    Column("by_iss", Text),
    Column("by_customer_id", Text),
    Column("by_client_id", Text),
)

STATUS_COUNT_COLUMNS = {status: f"{status.lower()}_orders" for status in ORDER_STATUSES}

customer_summaries = Table(
    "customer_summaries",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("order_count", Integer, nullable=False),
    # Sum of the totals of the customer's orders that are not cancelled.
    Column("total_cents", BigInteger, nullable=False),
    *(Column(name, Integer, nullable=False) for name in STATUS_COUNT_COLUMNS.values()),
)

product_sales = Table(
    "product_sales",
    metadata,
    Column("product_id", String(64), primary_key=True),
    Column("units_sold", BigInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("order_count", Integer, nullable=False),
    Index("ix_product_sales_units", "units_sold", "product_id"),
    Index("ix_product_sales_amount", "amount_cents", "product_id"),
)

accounts = Table(
    "accounts",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    # balance = deposited - debited + credited, checked against each event (account_projections)
    Column("balance_cents", BigInteger, nullable=False),
    Column("deposited_cents", BigInteger, nullable=False),
    Column("debited_cents", BigInteger, nullable=False),
    Column("credited_cents", BigInteger, nullable=False),
    # The last applied version: the per-account tracking record, written with the rows.
    Column("version", Integer, nullable=False),
    Column("opened_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# One line per money event of an account; the primary key is also the statement's order.
account_statement = Table(
    "account_statement",
    metadata,
    Column("customer_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("kind", String(8), nullable=False),  # DEPOSIT, DEBIT or CREDIT
    Column("amount_cents", BigInteger, nullable=False),  # signed: + deposit/credit, - debit
    Column("balance_cents", BigInteger, nullable=False),  # after this line
    Column("order_id", String(64)),
    Column("deposit_id", String(64)),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("position", BigInteger, nullable=False),
)

# Tracking: the next offset to consume per partition, committed with the rows it produced.
projector_positions = Table(
    "projector_positions",
    metadata,
    Column("topic", String(249), primary_key=True),
    Column("kafka_partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Where each event's Kafka message is (the first copy seen: a redelivery or a republish keeps
# it). Only the live projector knows offsets: events applied by a rebuild or a gap repair (read
# from the command API) have no row until a copy of their message is consumed.
event_offsets = Table(
    "event_offsets",
    metadata,
    Column("stream_id", String(80), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("event_id", String(64), nullable=False),
    Column("topic", String(249), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
)

# Events the projection could not apply, kept raw for an operator (Text: parking never fails).
parked_events = Table(
    "parked_events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("parked_at", UTCDateTime(), nullable=False),
    Column("origin", String(16), nullable=False),
    Column("topic", Text),
    Column("kafka_partition", Integer),
    Column("kafka_offset", BigInteger),
    Column("event_id", Text),
    # The stream id (an order id, or account:<customer_id>); named before accounts existed.
    Column("order_id", Text),
    Column("message_key", LargeBinary),
    Column("message_value", LargeBinary),
    Column("headers", JSON, nullable=False),
    Column("error", Text, nullable=False),
    # When the same message was parked again (a redelivery, a failed retry); NULL: seen once.
    Column("last_seen_at", UTCDateTime()),
    Index("ix_parked_events_message", "topic", "kafka_partition", "kafka_offset"),
)

# What operators did with parked events (POST /parked/{id}/retry and /discard): who, when,
# what, why and how it went. Kept when the parked row is deleted; a rebuild keeps it too.
parked_event_actions = Table(
    "parked_event_actions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("parked_id", BigInteger, nullable=False),
    Column("action", String(16), nullable=False),  # retry or discard
    Column("outcome", String(16), nullable=False),  # applied, duplicate, failed, discarded
    Column("acted_at", UTCDateTime(), nullable=False),
    Column("by_sub", Text, nullable=False),
    Column("by_iss", Text, nullable=False),
    Column("reason", Text),
    Column("event_id", Text),
    Column("stream_id", Text),
    Column("detail", Text),
)

VIEW_TABLES = (
    orders,
    order_lines,
    order_history,
    customer_summaries,
    product_sales,
    accounts,
    account_statement,
)
# Truncated by a rebuild with the view tables: it knows no offsets, and keeping old ones could
# name messages of a topic since recreated.
TRACKING_TABLES = (projector_positions, event_offsets)

# The read model can always be re-derived, and its Kafka offsets are committed in the same
# transactions as its rows: losing the last commits on power loss only means re-reading them.
# So NORMAL (no fsync per commit in WAL mode) is safe here, unlike for the event log.
READ_MODEL_SQLITE_SYNCHRONOUS = "NORMAL"


def create_read_model_schema(engine: Engine) -> None:
    """Create missing tables and nullable columns; safe when API workers and projector race."""
    create_tables(engine, metadata)


def create_read_model_engine(url: str) -> Engine:
    """An engine for the read model database (see READ_MODEL_SQLITE_SYNCHRONOUS)."""
    return create_database_engine(url, READ_MODEL_SQLITE_SYNCHRONOUS)
