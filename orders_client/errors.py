"""What the client raises: one exception class per problem type the services answer with
(RFC 9457 problem+json), a common base carrying the problem, and the transport's own failures.

Catch a family (`NotFound`, `Conflict`) or one type (`InsufficientFunds`); every problem's
extra members (`current_version`, `errors`, ...) are in `extensions`, the common ones also as
typed properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_TYPE_BASE = "urn:event-sourced-orders:problem:"


class OrdersClientError(Exception):
    """Base of everything the client raises."""


class ConnectionFailed(OrdersClientError):
    """No answer from the service (refused, dropped, timed out), every attempt."""

    def __init__(self, method: str, url: str, attempts: int, cause: Exception) -> None:
        super().__init__(f"{method} {url}: no answer after {attempts} attempt(s): {cause}")
        self.method = method
        self.url = url
        self.attempts = attempts


class ProjectionBehind(OrdersClientError):
    """A `min_version` read: the read model had not reached that version within the service's
    wait (READ_YOUR_WRITES_MAX_WAIT_MS); read again later."""

    def __init__(self, resource: str, min_version: int, seen_version: int | None) -> None:
        seen = "not there yet" if seen_version is None else f"at version {seen_version}"
        super().__init__(f"{resource} is {seen} in the read model; wanted {min_version}")
        self.resource = resource
        self.min_version = min_version
        self.seen_version = seen_version


class ProblemError(OrdersClientError):
    """An error answer: status, type (a URN), title, detail, and the problem's extra members."""

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.extensions: dict[str, Any] = dict(extensions or {})
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def slug(self) -> str:
        """The type without its URN prefix, e.g. "version-conflict"."""
        return self.type.removeprefix(PROBLEM_TYPE_BASE)

    @property
    def errors(self) -> dict[str, list[str]]:
        """Field name -> messages, for problems that name fields (else empty)."""
        errors = self.extensions.get("errors")
        return dict(errors) if isinstance(errors, dict) else {}

    def _int(self, name: str) -> int | None:
        value = self.extensions.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _str(self, name: str) -> str | None:
        value = self.extensions.get(name)
        return value if isinstance(value, str) else None


# --- families by status ---------------------------------------------------------------------


class BadRequest(ProblemError):
    """400: a malformed request, query parameter or header (see `errors`)."""


class Unauthorized(ProblemError):
    """401: no bearer token, or one the service refused."""


class Forbidden(ProblemError):
    """403: the token lacks a scope this needs (`required_scopes`)."""

    @property
    def required_scopes(self) -> list[str]:
        scopes = self.extensions.get("required_scopes")
        return [str(s) for s in scopes] if isinstance(scopes, list) else []


class NotFound(ProblemError):
    """404: no such resource (or not one this token may see)."""


class Conflict(ProblemError):
    """409: the request contradicts the stream's current state; nothing was recorded."""

    @property
    def current_version(self) -> int | None:
        return self._int("current_version")

    @property
    def current_status(self) -> str | None:
        return self._str("current_status")


class Unprocessable(ProblemError):
    """422: the request is well-formed but refused (invalid fields, a reused key)."""


class TooManyRequests(ProblemError):
    """429: the service is full of waiting reads; retry after `Retry-After`."""


class ServerError(ProblemError):
    """5xx other than 503: the service failed."""


class ServiceUnavailable(ServerError):
    """503: the service cannot answer right now (nothing was recorded), every attempt."""


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


class IdempotencyKeyReused(Unprocessable):
    """422 idempotency-key-reused: the key was first used for a different request."""


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
