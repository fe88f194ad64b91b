"""Query-string schemas of the query API (marshmallow); each invalid parameter is named."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import request
from marshmallow import Schema, ValidationError, fields, pre_load, validate

from query_service.projection.events import ORDER_STATUSES, is_identifier
from query_service.read_model.pagination import (
    Cursor,
    InvalidCursor,
    StatementCursor,
    decode_cursor,
    decode_statement_cursor,
)
from shared.http.errors import Problem

DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 500
DEFAULT_STATEMENT_PAGE_SIZE = 100
DEFAULT_TOP, MAX_TOP = 10, 100
MAX_VERSION = 2**31 - 1
_OFFSET_LOST_PLUS = re.compile(r" (\d{2}(:?\d{2})?)$")


class UtcDateTime(fields.AwareDateTime):
    """ISO 8601 with a timezone, returned in UTC; an unencoded '+' (read as ' ') is forgiven."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if isinstance(value, str):
            value = _OFFSET_LOST_PLUS.sub(r"+\1", value.strip())
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(UTC)
        except OverflowError:
            raise ValidationError("Not a representable UTC datetime.") from None


CURSOR_ERROR = "Not a cursor of this listing; use next_cursor from a previous page."


class CursorField(fields.Field[Cursor]):
    """The next_cursor of a previous page of orders (pagination.py has its shape)."""

    default_error_messages = {"invalid": CURSOR_ERROR}  # noqa: RUF012 - marshmallow's way

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Cursor:
        try:
            return decode_cursor(value if isinstance(value, str) else "")
        except InvalidCursor:
            raise self.make_error("invalid") from None


class StatementCursorField(fields.Field[StatementCursor]):
    """The next_cursor of a previous page of an account statement."""

    default_error_messages = {"invalid": CURSOR_ERROR}  # noqa: RUF012 - marshmallow's way

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> StatementCursor:
        try:
            return decode_statement_cursor(value if isinstance(value, str) else "")
        except InvalidCursor:
            raise self.make_error("invalid") from None


class CustomerOrdersArgs(Schema):
    """GET /customers/{id}/orders."""

    status = fields.String(validate=validate.OneOf(ORDER_STATUSES))
    created_after = UtcDateTime()
    created_before = UtcDateTime()
    limit = fields.Integer(
        load_default=DEFAULT_PAGE_SIZE, validate=validate.Range(1, MAX_PAGE_SIZE)
    )
    cursor = CursorField()

    @pre_load
    def _status_in_capitals(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if isinstance(data.get("status"), str):
            data["status"] = data["status"].strip().upper()
        return data


class OrderListArgs(CustomerOrdersArgs):
    """GET /orders."""

    customer_id = fields.String(validate=lambda value: _check_identifier(value))


class VersionedReadArgs(Schema):
    """GET /orders/{id} and GET /accounts/{id}: read-your-writes."""

    min_version = fields.Integer(validate=validate.Range(1, MAX_VERSION))


class StatementArgs(Schema):
    """GET /accounts/{id}/statement."""

    limit = fields.Integer(
        load_default=DEFAULT_STATEMENT_PAGE_SIZE, validate=validate.Range(1, MAX_PAGE_SIZE)
    )
    cursor = StatementCursorField()


class TopProductsArgs(Schema):
    """GET /products/top."""

    limit = fields.Integer(load_default=DEFAULT_TOP, validate=validate.Range(1, MAX_TOP))
    by = fields.String(load_default="units", validate=validate.OneOf(["units", "amount"]))


class NoArgs(Schema):
    """Endpoints without query parameters (an unexpected one is a client mistake)."""


def _check_identifier(value: str) -> None:
    if not is_identifier(value):
        raise ValidationError("Must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', ':', '-'.")


def query_args(schema: Schema) -> dict[str, Any]:
    """The request's query parameters loaded by `schema`, or a 400 naming each bad one."""
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    if repeated:
        raise _invalid({name: ["Give this parameter at most once."] for name in repeated})
    try:
        loaded: dict[str, Any] = schema.load(request.args.to_dict())
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {"_query": exc.messages}
        raise _invalid({str(name): _strings(value) for name, value in messages.items()}) from exc
    return loaded


def _strings(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _invalid(errors: dict[str, list[str]]) -> Problem:
    names = ", ".join(sorted(errors))
    return Problem(
        400,
        "invalid-query-parameter",
        "Invalid query parameter",
        f"Fix these query parameters and retry: {names}.",
        {"errors": errors},
    )
