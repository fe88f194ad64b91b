"""Marshmallow schemas of the command API's response bodies, for its OpenAPI document.

The handlers build their bodies directly; these schemas say what the bodies are, and the
contract test (schemathesis) checks every response against them, so they cannot drift apart.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from command_service.domain.order import OrderStatus
from shared.http.response_schemas import cents, decimal_string

ORDER_STATUSES = [status.value for status in OrderStatus]
POSITIVE = validate.Range(min=1)


class AccountMovementSchema(Schema):
    """Money a status change moved: paying debits the account, cancelling a paid order credits
    it back; both in the same append as the order's event."""

    customer_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=POSITIVE)
    movement = fields.String(required=True, validate=validate.OneOf(["debit", "credit"]))
    amount_cents = cents("The amount moved", minimum=1)
    amount = decimal_string("The amount moved")
    balance_cents = cents("The balance after the movement")
    balance = decimal_string("The balance after the movement")


class OrderCommandResultSchema(Schema):
    """What an accepted order command reports: the order's new version and log position."""

    order_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=POSITIVE)
    position = fields.Integer(
        required=True, validate=POSITIVE, metadata={"description": "Position in the event log."}
    )
    status = fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))
    account = fields.Nested(
        AccountMovementSchema,
        metadata={"description": "Present when the command moved money (pay, refund)."},
    )


class OrderLineStateSchema(Schema):
    """One line of an order."""

    product_id = fields.String(required=True)
    quantity = fields.Integer(required=True, validate=POSITIVE)
    unit_price_cents = fields.Integer(required=True, validate=validate.Range(min=0))


class OrderStateSchema(Schema):
    """An order rebuilt from its events (now, or as of a version or time)."""

    order_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(ORDER_STATUSES))
    version = fields.Integer(required=True, validate=POSITIVE)
    total_cents = fields.Integer(required=True, validate=validate.Range(min=0))
    currency = fields.String(required=True, metadata={"example": "EUR"})
    lines = fields.List(fields.Nested(OrderLineStateSchema), required=True)


class EventEnvelopeSchema(Schema):
    """One stored event, as served here and published to Kafka."""

    event_id = fields.String(required=True)
    type = fields.String(required=True, metadata={"example": "OrderPlaced"})
    stream_id = fields.String(
        required=True,
        metadata={"description": "The order id, or account:<customer_id> for an account."},
    )
    version = fields.Integer(required=True, validate=POSITIVE)
    position = fields.Integer(required=True, validate=POSITIVE)
    occurred_at = fields.DateTime(required=True)
    schema_version = fields.Integer(required=True, validate=POSITIVE)
    data = fields.Dict(required=True, keys=fields.String())
    metadata = fields.Dict(required=True, keys=fields.String())


class OrderEventsSchema(Schema):
    """One order's stream as stored, oldest first."""

    order_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=POSITIVE)
    events = fields.List(fields.Nested(EventEnvelopeSchema), required=True)


class EventsPageSchema(Schema):
    """A page of the whole log in position order."""

    events = fields.List(fields.Nested(EventEnvelopeSchema), required=True)
    next_after = fields.Integer(
        required=True,
        validate=validate.Range(min=0),
        metadata={"description": "Pass as ?after= to read the next page."},
    )
    has_more = fields.Boolean(required=True)


class AccountResultSchema(Schema):
    """What an accepted account command reports: the new version, position and balance."""

    customer_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=POSITIVE)
    position = fields.Integer(required=True, validate=POSITIVE)
    balance_cents = cents("The balance")
    balance = decimal_string("The balance")


class AccountStateSchema(Schema):
    """An account rebuilt from its events: balance = deposited - debited + credited."""

    customer_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=POSITIVE)
    balance_cents = cents("The balance")
    balance = decimal_string("The balance")
    deposited_cents = cents("All deposits", minimum=0)
    debited_cents = cents("All payments", minimum=0)
    credited_cents = cents("All refunds", minimum=0)


class AccountEventsSchema(Schema):
    """One account's stream as stored, oldest first."""

    customer_id = fields.String(required=True)
    version = fields.Integer(required=True, validate=POSITIVE)
    events = fields.List(fields.Nested(EventEnvelopeSchema), required=True)


class LogHeadSchema(Schema):
    """The newest position of the log."""

    head_position = fields.Integer(required=True, validate=validate.Range(min=0))


class CommandReadySchema(Schema):
    """The event log answers."""

    status = fields.String(required=True, validate=validate.OneOf(["ready"]))
