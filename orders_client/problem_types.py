"""One exception class per problem type the services answer with, and the function that
picks the class for an error answer (by its type; else by its status family)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orders_client.errors import (
    PROBLEM_TYPE_BASE,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ProblemError,
    ServerError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)

# --- one class per problem type -------------------------------------------------------------


class InvalidQueryParameter(BadRequest):
    """400 invalid-query-parameter."""


class InvalidHeader(BadRequest):
    """400 invalid-header (e.g. an Idempotency-Key with spaces)."""


class InvalidToken(Unauthorized):
    """401 invalid-token."""


class InsufficientScope(Forbidden):
    """403 insufficient-scope."""


class OrderNotFound(NotFound):
    """404 order-not-found."""

    @property
    def order_id(self) -> str | None:
        return self._str("order_id")


class AccountNotFound(NotFound):
    """404 account-not-found."""

    @property
    def customer_id(self) -> str | None:
        return self._str("customer_id")


class CustomerNotFound(NotFound):
    """404 customer-not-found (query service)."""


class ProductNotFound(NotFound):
    """404 product-not-found (query service)."""


class NotAtThatPoint(NotFound):
    """404 {order,account}-not-found-at-that-point: nothing at that as_of version or time."""

    @property
    def current_version(self) -> int | None:
        return self._int("current_version")


class VersionConflict(Conflict):
    """409 version-conflict. `expected_version` None: the server's own retries kept clashing
    with concurrent writers (nothing recorded; sending the same request again is safe)."""

    @property
    def expected_version(self) -> int | None:
        return self._int("expected_version")


class InvalidTransition(Conflict):
    """409 invalid-transition: the order's status does not allow that change."""

    @property
    def requested_status(self) -> str | None:
        return self._str("requested_status")


class OrderAlreadyExists(Conflict):
    """409 order-already-exists: the order id was placed with other content."""


class OrderIdTaken(Conflict):
    """409 order-id-taken: another customer's order has that id."""


class AccountAlreadyExists(Conflict):
    """409 account-already-exists."""


class AccountRequired(Conflict):
    """409 account-required: paying needs an account."""


class InsufficientFunds(Conflict):
    """409 insufficient-funds: the balance does not cover the order."""

    @property
    def balance_cents(self) -> int | None:
        return self._int("balance_cents")

    @property
    def required_cents(self) -> int | None:
        return self._int("required_cents")


class PaymentRuleViolated(Conflict):
    """409 payment-rule-violated (a deposit_id reused with another amount, ...): see `field`."""

    @property
    def field(self) -> str | None:
        return self._str("field")


class AccountBusy(Conflict):
    """409 account-busy: the account kept changing; the same request may simply be resent."""


class ValidationFailed(Unprocessable):
    """422 validation-error: `errors` names each invalid field."""


class IdempotencyKeyReused(Conflict):
    """409 idempotency-key-reused: the key was first used for a different request."""


class TooManyWaiters(TooManyRequests):
    """429 too-many-waiters: every min_version wait of the query API is taken."""


BY_SLUG: dict[str, type[ProblemError]] = {
    "invalid-query-parameter": InvalidQueryParameter,
    "invalid-header": InvalidHeader,
    "invalid-token": InvalidToken,
    "insufficient-scope": InsufficientScope,
    "order-not-found": OrderNotFound,
    "account-not-found": AccountNotFound,
    "customer-not-found": CustomerNotFound,
    "product-not-found": ProductNotFound,
    "order-not-found-at-that-point": NotAtThatPoint,
    "account-not-found-at-that-point": NotAtThatPoint,
    "version-conflict": VersionConflict,
    "invalid-transition": InvalidTransition,
    "order-already-exists": OrderAlreadyExists,
    "order-id-taken": OrderIdTaken,
    "account-already-exists": AccountAlreadyExists,
    "account-required": AccountRequired,
    "insufficient-funds": InsufficientFunds,
    "payment-rule-violated": PaymentRuleViolated,
    "account-busy": AccountBusy,
    "validation-error": ValidationFailed,
    "idempotency-key-reused": IdempotencyKeyReused,
    "too-many-waiters": TooManyWaiters,
}

BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Unprocessable,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def problem_error(status: int, body: Any, headers: Mapping[str, str] | None = None) -> ProblemError:
    """The exception for an error answer: by its problem type, else by its status.

    `body` is the parsed problem+json object, or None when the answer was not one (a proxy's
    HTML page): then the type is about:blank and the title the status.
    """
    problem = body if isinstance(body, dict) else {}
    type_ = str(problem.get("type") or "about:blank")
    title = str(problem.get("title") or f"HTTP {status}")
    detail = str(problem.get("detail") or "")
    extensions = {
        k: v for k, v in problem.items() if k not in ("type", "title", "status", "detail")
    }
    cls = (
        BY_SLUG.get(type_.removeprefix(PROBLEM_TYPE_BASE))
        if type_.startswith(PROBLEM_TYPE_BASE)
        else None
    )
    if cls is None:
        cls = BY_STATUS.get(status) or (ServerError if status >= 500 else ProblemError)
    return cls(status, type_, title, detail, extensions, headers)
