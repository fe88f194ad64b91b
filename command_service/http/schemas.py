"""Marshmallow schemas for the command API: the shape of each request, checked field by field.

They give a client every field error at once; the domain re-checks its own rules anyway.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from command_service.domain.account import MAX_DEPOSIT_CENTS
from command_service.domain.order import (
    MAX_LINES,
    MAX_QUANTITY,
    MIN_LINES,
    MIN_QUANTITY,
    OrderStatus,
)

IDENTIFIER_PATTERN = r"^[A-Za-z0-9._-]{1,64}\Z"
IDENTIFIER_RULE = validate.Regexp(
    IDENTIFIER_PATTERN,
    error="Must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'.",
)
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999.99")  # any amount: a typo guard, below 10**9
MAX_DEPOSIT = Decimal(MAX_DEPOSIT_CENTS) / 100
EXPECTED_NOTE = "Like If-Match; every expected version given must hold (else 409)."
TARGET_STATUSES = [s.value for s in OrderStatus if s is not OrderStatus.PLACED]


class Money(fields.Field[Decimal]):
    """An amount from `low` to `high` (default 0 to MAX_AMOUNT) with at most two decimals, as a
    JSON number or a decimal string.

    JSON numbers arrive as Decimal (the body is parsed with parse_float=Decimal), never float.
    The OpenAPI document states the bounds (openapi_components.money_shape).
    """

    default_error_messages = {  # noqa: RUF012 - marshmallow's own convention
        "invalid": 'Must be a decimal number or a decimal string, e.g. 12.50 or "12.50".',
        "negative": "Must not be negative.",
        "places": "Must have at most 2 decimal places.",
        "too_large": "Must be less than 1000000000.",
        "range": "Must be between {low} and {high}.",
    }

    def __init__(
        self, *, low: Decimal = Decimal(0), high: Decimal = MAX_AMOUNT, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            amount = money_amount(value)
        except InvalidMoney as exc:
            raise self.make_error(exc.reason) from None
        if not self.low <= amount <= self.high:
            raise self.make_error("range", low=f"{self.low:.2f}", high=f"{self.high:.2f}")
        return amount


class WholeNumber(fields.Integer):
    """An integer given as a JSON number with no fraction: 3, and also 3.0 or 3e0, which JSON
    Schema's "integer" (and so the OpenAPI document) counts as the same number; never a
    string, a bool or 3.5."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        # JSON numbers with a fraction or exponent arrive as Decimal (parse_float=Decimal).
        if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral():
            value = int(value)
        return super()._validated(value)


class InvalidMoney(Exception):
    """An amount Money refuses; `reason` is the key of its error message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def money_amount(value: Any) -> Decimal:
    """The Decimal a Money field makes of `value`, or InvalidMoney naming its message."""
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise InvalidMoney("invalid")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise InvalidMoney("invalid") from None
    if not amount.is_finite():
        raise InvalidMoney("invalid")
    if amount < 0:
        raise InvalidMoney("negative")
    if amount >= 1_000_000_000:
        raise InvalidMoney("too_large")
    if amount != amount.quantize(CENT):
        raise InvalidMoney("places")
    return amount


class OrderLineSchema(Schema):
    """One line of a PlaceOrder request."""

    product_id = fields.String(required=True, validate=IDENTIFIER_RULE)
    quantity = WholeNumber(required=True, validate=validate.Range(MIN_QUANTITY, MAX_QUANTITY))
    unit_price = Money(required=True)


class PlaceOrderSchema(Schema):
    """POST /orders."""

    order_id = fields.String(validate=IDENTIFIER_RULE)
    customer_id = fields.String(required=True, validate=IDENTIFIER_RULE)
    lines = fields.List(
        fields.Nested(OrderLineSchema),
        required=True,
        validate=validate.Length(MIN_LINES, MAX_LINES),
    )


class ChangeStatusSchema(Schema):
    """POST /orders/{id}/status."""

    status = fields.String(required=True, validate=validate.OneOf(TARGET_STATUSES))
    expected_version = WholeNumber(
        validate=validate.Range(min=1), metadata={"description": EXPECTED_NOTE}
    )


class CancelOrderSchema(Schema):
    """Optional body of DELETE /orders/{id}."""

    expected_version = WholeNumber(
        validate=validate.Range(min=1), metadata={"description": EXPECTED_NOTE}
    )
    reason = fields.String(validate=validate.Length(max=500))


class _AmountSchema(Schema):
    """An amount given once: as a decimal (`<name>`) or as integer cents (`<name>_cents`)."""

    amount_field = "amount"

    @validates_schema
    def _one_amount(self, data: dict[str, Any], **kwargs: Any) -> None:
        name = self.amount_field
        if name in data and f"{name}_cents" in data:
            raise ValidationError(f"Give {name} or {name}_cents, not both.", name)

    @post_load
    def _to_cents(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        name = self.amount_field
        if name in data:
            data[f"{name}_cents"] = int(data.pop(name) * 100)
        return data


class OpenAccountSchema(_AmountSchema):
    """POST /accounts."""

    amount_field = "initial_deposit"
    customer_id = fields.String(required=True, validate=IDENTIFIER_RULE)
    initial_deposit = Money(high=MAX_DEPOSIT)
    initial_deposit_cents = WholeNumber(validate=validate.Range(0, MAX_DEPOSIT_CENTS))


class DepositSchema(_AmountSchema):
    """POST /accounts/{id}/deposits."""

    amount = Money(low=CENT, high=MAX_DEPOSIT)
    amount_cents = WholeNumber(validate=validate.Range(1, MAX_DEPOSIT_CENTS))
    deposit_id = fields.String(validate=IDENTIFIER_RULE)

    @validates_schema
    def _amount_required(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "amount" not in data and "amount_cents" not in data:
            raise ValidationError('Give amount (e.g. "25.00") or amount_cents.', "amount")


# Built once, not per request: a Schema's constructor deep-copies its declared fields (the
# nested line schema included), and load() keeps no state on the instance (marshmallow 4 has
# no context), so every thread shares these.
PLACE_ORDER = PlaceOrderSchema()
CHANGE_STATUS = ChangeStatusSchema()
CANCEL_ORDER = CancelOrderSchema()
OPEN_ACCOUNT = OpenAccountSchema()
DEPOSIT = DepositSchema()


def load_or_raise(schema: Schema, payload: Any) -> dict[str, Any]:
    """Validate a payload; ValidationError carries every field's messages."""
    if schema is PLACE_ORDER:
        valid = valid_place_order(payload)
        if valid is not None:
            return valid
    result = schema.load(payload)
    if not isinstance(result, dict):
        raise ValidationError({"_body": ["Must be a JSON object."]})
    return result


_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)  # what IDENTIFIER_RULE matches with
_ORDER_KEYS = frozenset({"order_id", "customer_id", "lines"})
_LINE_KEYS = frozenset({"product_id", "quantity", "unit_price"})


def valid_place_order(payload: Any) -> dict[str, Any] | None:
    """What PLACE_ORDER.load returns for a plainly valid body, or None to let it decide.

    A shortcut for the common case only: it accepts nothing the schema refuses and returns
    the same values, and anything unusual (a refused field, an unknown key, a subtype) goes
    to marshmallow, so every error message is marshmallow's own.
    """
    if type(payload) is not dict or not payload.keys() <= _ORDER_KEYS:
        return None
    customer_id = payload.get("customer_id")
    if not _is_identifier(customer_id):
        return None
    lines = payload.get("lines")
    if type(lines) is not list or not MIN_LINES <= len(lines) <= MAX_LINES:
        return None
    loaded: dict[str, Any] = {"customer_id": customer_id}
    if "order_id" in payload:
        if not _is_identifier(payload["order_id"]):
            return None
        loaded["order_id"] = payload["order_id"]
    loaded_lines = []
    for line in lines:
        if type(line) is not dict or line.keys() != _LINE_KEYS:
            return None
        product_id, quantity = line["product_id"], line["quantity"]
        if not _is_identifier(product_id):
            return None
        if type(quantity) is not int or not MIN_QUANTITY <= quantity <= MAX_QUANTITY:
            return None
        try:
            unit_price = money_amount(line["unit_price"])
        except InvalidMoney:
            return None
        loaded_lines.append(
            {"product_id": product_id, "quantity": quantity, "unit_price": unit_price}
        )
    loaded["lines"] = loaded_lines
    return loaded


def _is_identifier(value: Any) -> bool:
    return type(value) is str and _IDENTIFIER.match(value) is not None
