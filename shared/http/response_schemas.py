"""Marshmallow schemas and fields both services' responses share: the problem+json error
(RFC 9457), the health answer, and money as integer cents beside a decimal string.
"""

from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields, validate

from shared.http.errors import PROBLEM_TYPE_BASE

MONEY_PATTERN = r"^-?[0-9]+\.[0-9]{2}$"


class ProblemSchema(Schema):
    """An error (RFC 9457 Problem Details); extension members depend on the problem type."""

    class Meta:
        unknown = INCLUDE  # documents additionalProperties: true (extension members)

    type = fields.String(
        required=True,
        metadata={
            "description": f"A URN naming the problem: {PROBLEM_TYPE_BASE}<slug>.",
            "pattern": f"^{PROBLEM_TYPE_BASE}[a-z0-9-]+$",
            "example": f"{PROBLEM_TYPE_BASE}validation-error",
        },
    )
    title = fields.String(required=True, metadata={"description": "Short, fixed per type."})
    status = fields.Integer(
        required=True,
        metadata={"description": "The HTTP status code.", "minimum": 400, "maximum": 599},
    )
    detail = fields.String(
        required=True, metadata={"description": "What happened and what to do about it."}
    )
    instance = fields.String(required=True, metadata={"description": "The request path."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "Invalid fields, query parameters or headers, each with its "
            'messages; nested fields are dotted paths such as "lines.0.quantity".',
            "example": {"lines.0.quantity": ["Must be greater than or equal to 1."]},
        },
    )


class HealthSchema(Schema):
    """The process answers (liveness)."""

    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


def cents(description: str, minimum: int | None = None) -> fields.Integer:
    """An amount of money in integer cents: the exact value."""
    return fields.Integer(
        required=True,
        validate=validate.Range(min=minimum) if minimum is not None else None,
        metadata={"description": f"{description}, in integer cents."},
    )


def decimal_string(description: str) -> fields.String:
    """The same amount as a decimal string with two places, for people ("12.50")."""
    return fields.String(
        required=True,
        validate=validate.Regexp(MONEY_PATTERN),
        metadata={"description": f"{description}, as a decimal string.", "example": "12.50"},
    )
