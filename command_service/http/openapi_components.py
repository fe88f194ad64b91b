"""The parts the command API's OpenAPI operations share: path and query parameters, the
Idempotency-Key and If-Match headers, response headers, and the errors every command can meet.
"""

from __future__ import annotations

from command_service.http.events import MAX_PAGE, MAX_POSITION
from shared.http import openapi as doc

IDENTIFIER = r"^[A-Za-z0-9._-]{1,64}$"
MONEY_SHAPE = {
    "anyOf": [
        {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,2})?$"},
        {"type": "number", "minimum": 0, "exclusiveMaximum": 1_000_000_000, "multipleOf": 0.01},
    ],
    "description": "A decimal string or a JSON number with at most 2 decimals (read as a "
    "decimal, never a float).",
    "example": "12.50",
}

ORDER_ID = doc.id_parameter("order_id", IDENTIFIER, "order", "o-1001")
CUSTOMER_ID = doc.id_parameter("customer_id", IDENTIFIER, "customer", "c-42")
IDEMPOTENCY_KEY = doc.parameter(
    "Idempotency-Key",
    "header",
    "Makes a retry safe: the first response to this key is stored with the command's events "
    "and returned again for the same request; the key with another request is a 422. Keys "
    "expire after IDEMPOTENCY_KEY_TTL_SECONDS.",
    {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
)
EXPECTED_VERSIONS = [
    doc.parameter(
        "If-Match",
        "header",
        "The version the order must be at (the ETag of a read), else 409.",
        {"type": "string", "pattern": r'^(W/)?"[1-9][0-9]{0,8}"$'},
    ),
    doc.parameter(
        "expected_version",
        "query",
        "Like If-Match; If-Match, this and the body's expected_version must agree.",
        {"type": "integer", "minimum": 1},
    ),
]
AS_OF = [
    doc.parameter(
        "as_of_version",
        "query",
        "The state as it was at this version (not together with as_of).",
        {"type": "integer", "minimum": 1},
    ),
    doc.parameter(
        "as_of",
        "query",
        "The state as it was at this time, ISO 8601 with an offset.",
        {"type": "string", "format": "date-time"},
    ),
]
LOG_PAGE = [
    doc.parameter(
        "after",
        "query",
        "Events after this log position (next_after of the previous page).",
        {"type": "integer", "minimum": 0, "maximum": MAX_POSITION, "default": 0},
    ),
    doc.parameter(
        "limit",
        "query",
        "Events per page.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100},
    ),
]

ETAG = doc.etag_header('The version as an entity tag, e.g. "3"; send it back in If-Match.')
RESULT_HEADERS = {
    "ETag": ETAG,
    "Idempotent-Replayed": doc.header(
        "true when this is the stored response to an earlier request with this Idempotency-Key.",
        {"type": "string", "enum": ["true"]},
    ),
}
CREATED_HEADERS = {
    **RESULT_HEADERS,
    "Location": doc.header("Where the new resource is read.", {"type": "string"}, required=True),
}
# (schema, headers) of each kind of success.
PLACED = ("OrderCommandResult", CREATED_HEADERS)
CHANGED = ("OrderCommandResult", RESULT_HEADERS)
OPENED = ("AccountResult", CREATED_HEADERS)
COMMAND_ERRORS = {
    400: doc.problem(
        "Malformed JSON, a body that is not an object, an empty body, an invalid "
        "Idempotency-Key or If-Match, or expected versions that disagree."
    ),
    413: doc.problem("The body is over COMMAND_MAX_BODY_BYTES."),
    415: doc.problem("The body is not Content-Type: application/json."),
    422: doc.problem(
        "Invalid fields (errors names each one), or an Idempotency-Key reused for another request."
    ),
    503: doc.unavailable("The event log cannot write right now; nothing was recorded."),
}
ORDER_CONFLICT = (
    "The order is not at the expected version or cannot make this transition, or the payment "
    "or refund was refused (account-required, insufficient-funds, payment-rule-violated, "
    "account-busy); the body says the current state."
)
NOT_READ = doc.unavailable("The event log cannot be read right now.")
