"""Maps what the application layer raises to problem+json responses of the command API."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from flask import Flask, Response, request
from marshmallow import ValidationError

from command_service.adapters.event_store import EventStoreUnavailable
from command_service.application.access import NotPermitted
from command_service.application.accounts import AccountContention
from command_service.application.as_of import NotAtThatPoint
from command_service.application.order_versions import VersionConflict
from command_service.domain.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    InsufficientFunds,
    InvalidCommand,
    InvalidTransition,
    OrderAlreadyExists,
    OrderIdTaken,
    OrderNotFound,
    PaymentNeedsAccount,
    PaymentRuleViolated,
)
from shared.contract.money import format_cents
from shared.http.auth import forbidden
from shared.http.errors import Problem, flatten_messages, problem_response, validation_problem

log = logging.getLogger("command_service.problems")

E = TypeVar("E", bound=Exception)


@dataclass(frozen=True)
class ProblemRule(Generic[E]):
    """How one exception type reads as a problem: status, type slug, title, detail, extras."""

    exception: type[E]
    status: int
    slug: str | Callable[[E], str]
    title: str | Callable[[E], str]
    detail: Callable[[E], str]
    extensions: Callable[[E], Mapping[str, Any]] = lambda exc: {}
    headers: Mapping[str, str] = field(default_factory=dict)

    def problem(self, exc: E) -> Problem:
        """The Problem this rule makes of `exc`."""
        slug = self.slug if isinstance(self.slug, str) else self.slug(exc)
        title = self.title if isinstance(self.title, str) else self.title(exc)
        return Problem(
            self.status, slug, title, self.detail(exc), self.extensions(exc), self.headers
        )

    def respond(self, exc: E) -> Response:
        """The problem+json response to `exc` (an error handler)."""
        return problem_response(self.problem(exc))


def _insufficient_funds_detail(exc: InsufficientFunds) -> str:
    missing = exc.amount_cents - exc.balance_cents
    return (
        f"Order {exc.order_id!r} costs {format_cents(exc.amount_cents)} but the account "
        f"of customer {exc.customer_id!r} holds {format_cents(exc.balance_cents)}; "
        f"deposit at least {format_cents(missing)} and retry. Nothing was recorded."
    )


# A tuple, not a list: mypy then keeps each rule's exception type and checks its lambdas.
RULES = (
    ProblemRule(
        OrderNotFound,
        404,
        "order-not-found",
        "Order not found",
        lambda exc: f"No order with id {exc.order_id!r} exists.",
        lambda exc: {"order_id": exc.order_id},
    ),
    ProblemRule(
        OrderAlreadyExists,
        409,
        "order-already-exists",
        "Order already exists",
        lambda exc: (
            f"Order {exc.order_id!r} already exists with different content "
            f"(version {exc.version}, status {exc.status}); choose another order_id."
        ),
        lambda exc: {
            "order_id": exc.order_id,
            "current_version": exc.version,
            "current_status": str(exc.status),
        },
    ),
    ProblemRule(
        OrderIdTaken,
        409,
        "order-id-taken",
        "Order id taken",
        lambda exc: f"The order id {exc.order_id!r} is taken; choose another order_id.",
        lambda exc: {"order_id": exc.order_id},
    ),
    ProblemRule(
        InvalidTransition,
        409,
        "invalid-transition",
        "Status change not allowed",
        lambda exc: (
            f"Order {exc.order_id!r} is {exc.current} at version {exc.version}; "
            f"it cannot move to {exc.target}."
        ),
        lambda exc: {
            "order_id": exc.order_id,
            "current_version": exc.version,
            "current_status": str(exc.current),
            "requested_status": str(exc.target),
        },
    ),
    ProblemRule(
        VersionConflict,
        409,
        "version-conflict",
        "Version conflict",
        lambda exc: (
            f"Order {exc.order_id!r} is at version {exc.current_version} "
            f"({exc.current_status}), not the expected version {exc.expected}; "
            "reload it and retry."
        ),
        lambda exc: {
            "order_id": exc.order_id,
            "expected_version": exc.expected,
            "current_version": exc.current_version,
            "current_status": str(exc.current_status),
        },
    ),
    ProblemRule(
        AccountNotFound,
        404,
        "account-not-found",
        "Account not found",
        lambda exc: f"Customer {exc.customer_id!r} has no account; open one with POST /accounts.",
        lambda exc: {"customer_id": exc.customer_id},
    ),
    ProblemRule(
        AccountAlreadyExists,
        409,
        "account-already-exists",
        "Account already exists",
        lambda exc: (
            f"Customer {exc.customer_id!r} already has an account (version "
            f"{exc.version}) opened with a different request; deposit into it instead."
        ),
        lambda exc: {"customer_id": exc.customer_id, "current_version": exc.version},
    ),
    ProblemRule(
        PaymentNeedsAccount,
        409,
        "account-required",
        "No account to pay from",
        lambda exc: (
            f"Order {exc.order_id!r} cannot be paid: customer {exc.customer_id!r} has "
            "no account. Open one with POST /accounts, deposit funds, then retry. "
            "Nothing was recorded."
        ),
        lambda exc: {"order_id": exc.order_id, "customer_id": exc.customer_id},
    ),
    ProblemRule(
        InsufficientFunds,
        409,
        "insufficient-funds",
        "Insufficient funds",
        _insufficient_funds_detail,
        lambda exc: {
            "order_id": exc.order_id,
            "customer_id": exc.customer_id,
            "balance_cents": exc.balance_cents,
            "required_cents": exc.amount_cents,
        },
    ),
    ProblemRule(
        PaymentRuleViolated,
        409,
        "payment-rule-violated",
        "Money movement not allowed",
        lambda exc: f"{exc.message}. Nothing was recorded.",
        lambda exc: {"field": exc.field},
    ),
    ProblemRule(
        AccountContention,
        409,
        "account-busy",
        "Account changed concurrently",
        lambda exc: (
            f"The account of customer {exc.customer_id!r} kept changing while this "
            "command was decided; nothing was recorded. Retry the same request."
        ),
        lambda exc: {"customer_id": exc.customer_id},
    ),
    ProblemRule(
        NotAtThatPoint,
        404,
        lambda exc: f"{exc.kind}-not-found-at-that-point",
        lambda exc: f"No such {exc.kind} state",
        lambda exc: (
            f"{exc.kind.capitalize()} {exc.identifier!r} had no events at "
            f"{exc.as_of.describe()}; it is now at version {exc.current_version}."
        ),
        lambda exc: {
            "order_id" if exc.kind == "order" else "customer_id": exc.identifier,
            "current_version": exc.current_version,
        },
    ),
)

UNAVAILABLE: ProblemRule[EventStoreUnavailable] = ProblemRule(
    EventStoreUnavailable,
    503,
    "event-store-unavailable",
    "Event store unavailable",
    lambda exc: (
        "The event log cannot accept writes right now; nothing was recorded. Retry shortly."
    ),
    headers={"Retry-After": "1"},
)


def register_command_problems(
    app: Flask, on_unavailable: Callable[[EventStoreUnavailable], None] | None = None
) -> None:
    """Install the error handlers for domain and store errors.

    `on_unavailable` hears of every EventStoreUnavailable (readiness remembers it).
    """

    @app.errorhandler(ValidationError)
    def _invalid_fields(exc: ValidationError) -> Response:
        return problem_response(validation_problem(flatten_messages(exc.messages)))

    @app.errorhandler(InvalidCommand)
    def _invalid_command(exc: InvalidCommand) -> Response:
        return problem_response(validation_problem({exc.field: [exc.message]}))

    for rule in RULES:
        app.register_error_handler(rule.exception, rule.respond)

    @app.errorhandler(NotPermitted)
    def _not_permitted(exc: NotPermitted) -> Response:
        detail = f"{exc.detail[0].upper()}{exc.detail[1:]}."
        return problem_response(forbidden(exc.scopes, detail))

    @app.errorhandler(EventStoreUnavailable)
    def _unavailable(exc: EventStoreUnavailable) -> Response:
        # The client only sees "retry"; operators need the cause (disk full, database locked).
        log.warning(
            "event store unavailable: %s",
            exc,
            extra={"path": request.path, "cause": _cause(exc)},
        )
        if on_unavailable is not None:
            on_unavailable(exc)
        return UNAVAILABLE.respond(exc)


def _cause(exc: EventStoreUnavailable) -> str:
    """The database driver's own error, e.g. OperationalError('database or disk is full')."""
    # SQLAlchemy's wrapper would add the statement and its parameters: customer data, at length.
    cause = exc.__cause__
    return repr(getattr(cause, "orig", None) or cause or exc)
