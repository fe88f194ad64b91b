"""Marshmallow schemas of the query API's response bodies (see `representations`), for its
OpenAPI document; the contract test checks every response against them.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from query_service.projection.events import ORDER_STATUSES
from query_service.read_model.pagination import ORDER_CURSOR_PATTERN, STATEMENT_CURSOR_PATTERN
from shared.http.response_schemas import cents, decimal_string

POSITIVE = validate.Range(min=1)
NOT_NEGATIVE = validate.Range(min=0)
STATUS = validate.OneOf(ORDER_STATUSES)


class OrderSummarySchema(Schema):
    """An order as listed; the total counts every line."""

    order_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    status = fields.String(required=True, validate=STATUS)
    version = fields.Integer(required=True, validate=POSITIVE)
    line_count = fields.Integer(required=True, validate=POSITIVE)
    total_quantity = fields.Integer(required=True, validate=POSITIVE)
    total_cents = cents("The order total", minimum=0)
    total = decimal_string("The order total")
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class OrderLineViewSchema(Schema):
    """One line of an order."""

    line_no = fields.Integer(required=True, validate=POSITIVE)
    product_id = fields.String(required=True)
    quantity = fields.Integer(required=True, validate=POSITIVE)
    unit_price_cents = cents("The unit price", minimum=0)
    unit_price = decimal_string("The unit price")
    amount_cents = cents("quantity x unit price", minimum=0)
    amount = decimal_string("quantity x unit price")


class OrderDetailSchema(OrderSummarySchema):
    """An order with its lines."""

    lines = fields.List(fields.Nested(OrderLineViewSchema), required=True)


class OrderPageSchema(Schema):
    """A page of orders, newest first."""

    orders = fields.List(fields.Nested(OrderSummarySchema), required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        validate=validate.Regexp(ORDER_CURSOR_PATTERN),
        metadata={"description": "Pass as ?cursor= for the next page; null on the last page."},
    )


class ActorSchema(Schema):
    """Who caused an event: the subject and issuer of the token, its customer and client."""

    sub = fields.String(required=True, metadata={"example": "c-42"})
    iss = fields.String(required=True, allow_none=True)
    customer_id = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The token's customer; null for staff and services."},
    )
    client_id = fields.String(required=True, allow_none=True)


class HistoryEntrySchema(Schema):
    """One applied event of an order, and who caused it."""

    version = fields.Integer(required=True, validate=POSITIVE)
    type = fields.String(required=True, metadata={"example": "OrderPlaced"})
    occurred_at = fields.DateTime(required=True)
    summary = fields.String(required=True, validate=validate.Length(max=200))
    event_id = fields.String(required=True)
    position = fields.Integer(required=True, validate=POSITIVE)
    by = fields.Nested(
        ActorSchema,
        required=True,
        allow_none=True,
        metadata={"description": "null for events stored before principals were recorded."},
    )


class OrderHistorySchema(Schema):
    """An order's events as the projection applied them, oldest first."""

    order_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=POSITIVE)
    history = fields.List(fields.Nested(HistoryEntrySchema), required=True)


class KafkaMessageSchema(Schema):
    """Where one event's message is on the topic (the first copy the projector consumed)."""

    version = fields.Integer(required=True, validate=POSITIVE)
    event_id = fields.String(required=True)
    topic = fields.String(required=True, metadata={"example": "orders.events"})
    partition = fields.Integer(required=True, validate=NOT_NEGATIVE)
    offset = fields.Integer(required=True, validate=NOT_NEGATIVE)


class StreamMessagesSchema(Schema):
    """A stream's Kafka messages as far as the projector recorded them, oldest first."""

    stream_id = fields.String(required=True, metadata={"example": "o-1001"})
    version = fields.Integer(
        required=True,
        validate=POSITIVE,
        metadata={"description": "The last version the read model applied."},
    )
    messages = fields.List(
        fields.Nested(KafkaMessageSchema),
        required=True,
        metadata={
            "description": "One per event whose message the projector consumed. An applied "
            "version without one was applied by a rebuild or a gap repair, which read the "
            "command API, not the topic; a version above `version` is not projected yet."
        },
    )


class StatusCountsSchema(Schema):
    """How many of a customer's orders are in each status."""

    PLACED = fields.Integer(required=True, validate=NOT_NEGATIVE)
    PAID = fields.Integer(required=True, validate=NOT_NEGATIVE)
    SHIPPED = fields.Integer(required=True, validate=NOT_NEGATIVE)
    DELIVERED = fields.Integer(required=True, validate=NOT_NEGATIVE)
    CANCELLED = fields.Integer(required=True, validate=NOT_NEGATIVE)


class BalanceSchema(Schema):
    """An account's balance."""

    balance_cents = cents("The balance")
    balance = decimal_string("The balance")


class CustomerSchema(Schema):
    """A customer's orders (the total leaves out cancelled ones) and account balance."""

    customer_id = fields.String(required=True)
    order_count = fields.Integer(required=True, validate=NOT_NEGATIVE)
    orders_by_status = fields.Nested(StatusCountsSchema, required=True)
    total_cents = cents("Total of the orders not cancelled", minimum=0)
    total = decimal_string("Total of the orders not cancelled")
    account = fields.Nested(
        BalanceSchema,
        required=True,
        allow_none=True,
        metadata={"description": "null when the customer has no account."},
    )


class AccountViewSchema(Schema):
    """A customer's account: balance = deposited - debited + credited."""

    customer_id = fields.String(required=True)
    balance_cents = cents("The balance")
    balance = decimal_string("The balance")
    deposited_cents = cents("All deposits", minimum=0)
    deposited = decimal_string("All deposits")
    debited_cents = cents("All payments", minimum=0)
    debited = decimal_string("All payments")
    credited_cents = cents("All refunds", minimum=0)
    credited = decimal_string("All refunds")
    version = fields.Integer(required=True, validate=POSITIVE)
    opened_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class StatementLineSchema(Schema):
    """One money movement; the amount is signed (a debit is negative)."""

    version = fields.Integer(required=True, validate=POSITIVE)
    occurred_at = fields.DateTime(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(["DEPOSIT", "DEBIT", "CREDIT"]))
    amount_cents = cents("The signed amount")
    amount = decimal_string("The signed amount")
    balance_cents = cents("The balance after this line")
    balance = decimal_string("The balance after this line")
    order_id = fields.String(required=True, allow_none=True)
    deposit_id = fields.String(required=True, allow_none=True)


class StatementSchema(Schema):
    """A page of an account's statement, oldest first."""

    customer_id = fields.String(required=True)
    lines = fields.List(fields.Nested(StatementLineSchema), required=True)
    next_cursor = fields.String(
        required=True,
        allow_none=True,
        validate=validate.Regexp(STATEMENT_CURSOR_PATTERN),
        metadata={"description": "Pass as ?cursor= for the next page; null on the last page."},
    )


class ProductSalesSchema(Schema):
    """A product's sales over the orders that are not cancelled."""

    product_id = fields.String(required=True)
    units_sold = fields.Integer(required=True, validate=NOT_NEGATIVE)
    amount_cents = cents("Amount sold", minimum=0)
    amount = decimal_string("Amount sold")
    order_count = fields.Integer(required=True, validate=NOT_NEGATIVE)


class TopProductsSchema(Schema):
    """Best sellers, by units or by amount."""

    by = fields.String(required=True, validate=validate.OneOf(["units", "amount"]))
    products = fields.List(fields.Nested(ProductSalesSchema), required=True)


class KafkaReachabilitySchema(Schema):
    """Whether the lag probe reached Kafka within its deadline."""

    reachable = fields.Boolean(required=True)
    error = fields.String(metadata={"description": "Why not, when unreachable."})


class PartitionProgressSchema(Schema):
    """The projector's stored position in one partition and, if Kafka answered, its lag."""

    partition = fields.Integer(required=True, validate=NOT_NEGATIVE)
    next_offset = fields.Integer(required=True, allow_none=True, validate=NOT_NEGATIVE)
    updated_at = fields.DateTime(required=True, allow_none=True)
    end_offset = fields.Integer(required=True, allow_none=True, validate=NOT_NEGATIVE)
    lag = fields.Integer(required=True, allow_none=True, validate=NOT_NEGATIVE)


class ProjectorReportSchema(Schema):
    """The projector's progress through the topic."""

    topic = fields.String(required=True)
    kafka = fields.Nested(KafkaReachabilitySchema, required=True)
    partitions = fields.List(fields.Nested(PartitionProgressSchema), required=True)
    total_lag = fields.Integer(
        required=True,
        allow_none=True,
        validate=NOT_NEGATIVE,
        metadata={"description": "null when some partition's lag is unknown."},
    )


class QueryReadySchema(Schema):
    """The read model answers (positions are in /projector/status: this one is public)."""

    status = fields.String(required=True, validate=validate.OneOf(["ready"]))
    database = fields.String(required=True, validate=validate.OneOf(["ok"]))


class ProjectorStatusSchema(Schema):
    """How far behind the topic the projector is, and how many events wait for an operator."""

    parked_events = fields.Integer(required=True, validate=NOT_NEGATIVE)
    projector = fields.Nested(ProjectorReportSchema, required=True)
