"""The parts the command API's OpenAPI operations share: path and query parameters, the
Idempotency-Key and If-Match headers, response headers, and the errors every command can meet.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from command_service.http.events import MAX_PAGE, MAX_POSITION
from command_service.http.schemas import CENT, Money
from shared.http import openapi as doc

IDENTIFIER = r"^[A-Za-z0-9._-]{1,64}$"


def money_shape(field: Money) -> dict[str, Any]:
    """The JSON Schema of a Money field: a decimal string or a JSON number within its bounds."""
    return {
        "anyOf": [
            {"type": "string", "pattern": decimal_pattern(field.low, field.high)},
            {
                "type": "number",
                "minimum": _json_number(field.low),
                "maximum": _json_number(field.high),
                "multipleOf": 0.01,
            },
        ],
        "description": "A decimal string or a JSON number with at most 2 decimals (read as a "
        f"decimal, never a float), from {field.low:.2f} to {field.high:.2f}.",
        "example": "12.50",
    }


def decimal_pattern(low: Decimal, high: Decimal) -> str:
    """An ECMA 262 pattern matching exactly the plain decimal strings (leading zeros allowed,
    at most 2 decimals besides trailing zeros) from `low` to `high`.

    Only the bounds Money fields use: low 0 or 0.01, high 10**k or 10**k - 0.01.
    """
    places = r"(?:\.[0-9]{1,2}0*)?"
    if high == high.to_integral_value() and _is_power_of_ten(high):
        digits = len(str(int(high))) - 1  # below 10**k: k digits, then 10**k itself
        top = f"|{int(high)}(?:\\.0+)?"
    elif _is_power_of_ten(high + CENT):
        digits, top = len(str(int(high + CENT))) - 1, ""
    else:
        raise ValueError(f"no pattern for an upper bound of {high}")
    if low == 0:
        below = f"[0-9]{{1,{digits}}}{places}"
    elif low == CENT:
        below = f"[1-9][0-9]{{0,{digits - 1}}}{places}|0\\.(?:[1-9][0-9]?|0[1-9])0*"
    else:
        raise ValueError(f"no pattern for a lower bound of {low}")
    return f"^0*(?:{below}{top})$"


def _json_number(value: Decimal) -> int | float:
    # A Decimal would become a JSON string; these bounds are exact as floats.
    return int(value) if value == int(value) else float(value)


def _is_power_of_ten(value: Decimal) -> bool:
    text = str(int(value))
    return value == int(value) and text[0] == "1" and set(text[1:]) <= {"0"}


ORDER_ID = doc.id_parameter("order_id", IDENTIFIER, "order", "o-1001")
CUSTOMER_ID = doc.id_parameter("customer_id", IDENTIFIER, "customer", "c-42")
IDEMPOTENCY_KEY = doc.parameter(
    "Idempotency-Key",
    "header",
    "Makes a retry safe: the first response to this key is stored with the command's events "
    "and returned again for the same request; the key with another request is a 409 "
    "(idempotency-key-reused): whether a key is taken depends on what the server stored, not "
    "on the request. Keys expire after IDEMPOTENCY_KEY_TTL_SECONDS.",
    {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$"},
)
EXPECTED_VERSIONS = [
    doc.parameter(
        "If-Match",
        "header",
        "The version the order must be at (the ETag of a read, or the bare number), else 409. "
        "Empty, it is an empty list of entity tags (RFC 9110), which no version matches: "
        "always 409.",
        {"type": "string", "pattern": r'^(?:(?:W/)?(?:"0*[1-9][0-9]*"|0*[1-9][0-9]*))?$'},
    ),
    doc.parameter(
        "expected_version",
        "query",
        "Like If-Match. Every expected version given (If-Match, this, the body's "
        "expected_version) must hold: ones that differ can never all hold, so the answer is the "
        "409 version conflict, and nothing is written.",
        {"type": "integer", "minimum": 1},
    ),
]
AS_OF = [
    doc.parameter(
        "as_of_version",
        "query",
        "The state as it was at this version. With as_of too, both bound it: the state after "
        "the last event at or before this version and at or before that time.",
        {"type": "integer", "minimum": 1},
    ),
    doc.parameter(
        "as_of",
        "query",
        "The state as it was at this time (inclusive), ISO 8601 with an offset; see "
        "as_of_version for both together.",
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
        "Malformed JSON, a body that is not an object, an empty body, or an invalid "
        "Idempotency-Key or If-Match."
    ),
    413: doc.problem("The body is over COMMAND_MAX_BODY_BYTES."),
    415: doc.problem("The body is not Content-Type: application/json."),
    422: doc.problem("Invalid fields (errors names each one)."),
    503: doc.unavailable("The event log cannot write right now; nothing was recorded."),
}
# Every command's 409 ends with this: the one refusal that depends on the key's stored state.
KEY_REUSED = (
    " Or the Idempotency-Key was first used for a different request (idempotency-key-reused); "
    "the body names it, and nothing was recorded."
)
ORDER_CONFLICT = (
    "The order is not at every expected version given or cannot make this transition, or the "
    "payment or refund was refused (account-required, insufficient-funds, "
    "payment-rule-violated, account-busy); the body says the current state."
)
NOT_READ = doc.unavailable("The event log cannot be read right now.")
