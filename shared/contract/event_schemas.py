"""JSON Schema (draft-07) of the wire contract: the envelope, its metadata and the data of each
event type at each schema version, old versions included, with one example each.

This is the single source of the AsyncAPI document (command_service/outbox/asyncapi.py builds
it from these) and of the tests that hold every published message to it. A new shape of an
event is a new entry here, next to its upcasting step in `upcasting.py`; old entries stay,
since the log keeps old rows and a republish sends them as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Schema = dict[str, Any]

ORDER_STATUSES = ["PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED"]
# As envelope.format_timestamp writes it: UTC, microseconds, a Z suffix.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"
# W3C Trace Context, version 00: version-trace_id-parent_id-flags.
TRACEPARENT_PATTERN = r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"


@dataclass(frozen=True)
class DataSchema:
    """The shape of one event type's `data` at one schema version."""

    event_type: str
    schema_version: int
    summary: str
    schema: Schema
    example: dict[str, Any]
    # How a reader brings this version to the next one (None for the current version).
    upcast: str | None = None

    @property
    def name(self) -> str:
        """`OrderPlaced.v2`: the key of this shape in the AsyncAPI document."""
        return f"{self.event_type}.v{self.schema_version}"


def _object(required: list[str], properties: Schema, optional: Schema | None = None) -> Schema:
    """A closed object: these properties, `required` among them, nothing else."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": required,
        "properties": {**properties, **(optional or {})},
    }


IDENTIFIER: Schema = {"type": "string", "minLength": 1}
CENTS: Schema = {"type": "integer", "minimum": 0}
STATUS: Schema = {"type": "string", "enum": ORDER_STATUSES}
ORDER_LINE = _object(
    ["product_id", "quantity", "unit_price_cents", "amount_cents"],
    {
        "product_id": IDENTIFIER,
        "quantity": {"type": "integer", "minimum": 1},
        "unit_price_cents": CENTS,
        "amount_cents": {**CENTS, "description": "quantity * unit_price_cents"},
    },
)
LINES: Schema = {"type": "array", "minItems": 1, "items": ORDER_LINE}
ORDER = {"order_id": IDENTIFIER, "customer_id": IDENTIFIER}
MOVEMENT = {
    "customer_id": IDENTIFIER,
    "order_id": IDENTIFIER,
    "amount_cents": CENTS,
    "balance_cents": {**CENTS, "description": "The account's balance after this movement."},
}
LINE_EXAMPLE = {"product_id": "p-1", "quantity": 2, "unit_price_cents": 1250, "amount_cents": 2500}
PLACED_V1_EXAMPLE = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "lines": [LINE_EXAMPLE],
    "total_cents": 2500,
}
MOVEMENT_EXAMPLE = {"customer_id": "c-1", "order_id": "o-1", "amount_cents": 2500}

DATA_SCHEMAS: tuple[DataSchema, ...] = (
    DataSchema(
        "OrderPlaced",
        1,
        "An order was accepted (written before orders stated their currency).",
        _object(
            ["order_id", "customer_id", "lines", "total_cents"],
            {**ORDER, "lines": LINES, "total_cents": CENTS},
        ),
        PLACED_V1_EXAMPLE,
        upcast='Every v1 order was in EUR: add "currency": "EUR" to read it as v2.',
    ),
    DataSchema(
        "OrderPlaced",
        2,
        "An order was accepted with its lines and computed total.",
        _object(
            ["order_id", "customer_id", "lines", "total_cents", "currency"],
            {
                **ORDER,
                "lines": LINES,
                "total_cents": CENTS,
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        ),
        {**PLACED_V1_EXAMPLE, "currency": "EUR"},
    ),
    DataSchema(
        "OrderStatusChanged",
        1,
        "An order moved from one status to the next.",
        _object(
            ["order_id", "customer_id", "from_status", "to_status", "total_cents"],
            {**ORDER, "from_status": STATUS, "to_status": STATUS, "total_cents": CENTS},
        ),
        {
            "order_id": "o-1",
            "customer_id": "c-1",
            "from_status": "PLACED",
            "to_status": "PAID",
            "total_cents": 2500,
        },
    ),
    DataSchema(
        "OrderCancelled",
        1,
        "An order was cancelled; it carries its lines and total to reverse their effects.",
        _object(
            ["order_id", "customer_id", "previous_status", "lines", "total_cents"],
            {**ORDER, "previous_status": STATUS, "lines": LINES, "total_cents": CENTS},
            {"reason": {"type": ["string", "null"]}},
        ),
        {**PLACED_V1_EXAMPLE, "previous_status": "PAID", "reason": "changed my mind"},
    ),
    DataSchema(
        "AccountOpened",
        1,
        "A customer's account exists, with a zero balance.",
        _object(["customer_id"], {"customer_id": IDENTIFIER}),
        {"customer_id": "c-1"},
    ),
    DataSchema(
        "FundsDeposited",
        1,
        "Money came in (a deposit_id, when given, counts once).",
        _object(
            ["customer_id", "amount_cents", "balance_cents", "deposit_id"],
            {
                "customer_id": IDENTIFIER,
                "amount_cents": CENTS,
                "balance_cents": MOVEMENT["balance_cents"],
                "deposit_id": {"type": ["string", "null"]},
            },
        ),
        {"customer_id": "c-1", "amount_cents": 10000, "balance_cents": 10000, "deposit_id": "d-1"},
    ),
    DataSchema(
        "AccountDebited",
        1,
        "An order was paid from the account.",
        _object(list(MOVEMENT), MOVEMENT),
        {**MOVEMENT_EXAMPLE, "balance_cents": 7500},
    ),
    DataSchema(
        "AccountCredited",
        1,
        "A paid order was cancelled and exactly its debit given back.",
        _object(list(MOVEMENT), MOVEMENT),
        {**MOVEMENT_EXAMPLE, "balance_cents": 10000},
    ),
)

PRINCIPAL = _object(
    ["sub", "iss"],
    {"sub": IDENTIFIER, "iss": IDENTIFIER},
    {"customer_id": IDENTIFIER, "client_id": IDENTIFIER, "jti": IDENTIFIER},
)

# Open: metadata may gain keys without a new schema version; these are the ones written today.
METADATA: Schema = {
    "type": "object",
    "description": "Who and what caused the event. Events written before a key existed lack it.",
    "properties": {
        "correlation_id": {"type": "string", "description": "Spans a whole flow of commands."},
        "causation_id": {"type": "string", "description": "The command that appended it."},
        "principal": {**PRINCIPAL, "description": "The verified caller (docs/security.md)."},
        "command_fingerprint": {"type": "string", "description": "For retries; internal."},
        "traceparent": {
            "type": "string",
            "pattern": TRACEPARENT_PATTERN,
            "description": "W3C traceparent of the request that appended it (optional).",
        },
    },
}


def envelope_schema(data: DataSchema, data_ref: Schema, metadata_ref: Schema) -> Schema:
    """The Kafka value of one event type at one schema version: the envelope around its data."""
    return _object(
        [
            "event_id",
            "type",
            "stream_id",
            "version",
            "position",
            "occurred_at",
            "schema_version",
            "data",
            "metadata",
        ],
        {
            "event_id": {**IDENTIFIER, "description": "Unique per event; = the ce_id header."},
            "type": {"type": "string", "const": data.event_type},
            "stream_id": {**IDENTIFIER, "description": "The Kafka key; = ce_subject."},
            "version": {
                "type": "integer",
                "minimum": 1,
                "description": "1, 2, ... within the stream, without gaps.",
            },
            "position": {
                "type": "integer",
                "minimum": 1,
                "description": "Global, gapless position in the event log (the log's order).",
            },
            "occurred_at": {"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN},
            "schema_version": {"type": "integer", "const": data.schema_version},
            "data": data_ref,
            "metadata": metadata_ref,
        },
    )
