"""Maps what the application layer raises to problem+json responses of the command API."""

from __future__ import annotations

from flask import Flask, Response
from marshmallow import ValidationError

from command_service.account_service import AccountContention
from command_service.application import VersionConflict
from command_service.as_of import NotAtThatPoint
from command_service.domain.errors import (
    AccountAlreadyExists,
    AccountNotFound,
    InsufficientFunds,
    InvalidCommand,
    InvalidTransition,
    OrderAlreadyExists,
    OrderNotFound,
    PaymentNeedsAccount,
    PaymentRuleViolated,
)
from command_service.event_store import EventStoreUnavailable
from shared.errors import Problem, flatten_messages, problem_response, validation_problem
from shared.money import format_cents


def register_command_problems(app: Flask) -> None:
    """Install the error handlers for domain and store errors."""

    @app.errorhandler(ValidationError)
    def _invalid_fields(exc: ValidationError) -> Response:
        return problem_response(validation_problem(flatten_messages(exc.messages)))

    @app.errorhandler(InvalidCommand)
    def _invalid_command(exc: InvalidCommand) -> Response:
        return problem_response(validation_problem({exc.field: [exc.message]}))

    @app.errorhandler(OrderNotFound)
    def _not_found(exc: OrderNotFound) -> Response:
        return problem_response(
            Problem(
                404,
                "order-not-found",
                "Order not found",
                f"No order with id {exc.order_id!r} exists.",
                {"order_id": exc.order_id},
            )
        )

    @app.errorhandler(OrderAlreadyExists)
    def _exists(exc: OrderAlreadyExists) -> Response:
        return problem_response(
            Problem(
                409,
                "order-already-exists",
                "Order already exists",
                f"Order {exc.order_id!r} already exists with different content "
                f"(version {exc.version}, status {exc.status}); choose another order_id.",
                {
                    "order_id": exc.order_id,
                    "current_version": exc.version,
                    "current_status": str(exc.status),
                },
            )
        )

    @app.errorhandler(InvalidTransition)
    def _transition(exc: InvalidTransition) -> Response:
        return problem_response(
            Problem(
                409,
                "invalid-transition",
                "Status change not allowed",
                f"Order {exc.order_id!r} is {exc.current} at version {exc.version}; "
                f"it cannot move to {exc.target}.",
                {
                    "order_id": exc.order_id,
                    "current_version": exc.version,
                    "current_status": str(exc.current),
                    "requested_status": str(exc.target),
                },
            )
        )

    @app.errorhandler(VersionConflict)
    def _conflict(exc: VersionConflict) -> Response:
        return problem_response(
            Problem(
                409,
                "version-conflict",
                "Version conflict",
                f"Order {exc.order_id!r} is at version {exc.current_version} "
                f"({exc.current_status}), not the expected version {exc.expected}; "
                "reload it and retry.",
                {
                    "order_id": exc.order_id,
                    "expected_version": exc.expected,
                    "current_version": exc.current_version,
                    "current_status": str(exc.current_status),
                },
            )
        )

    @app.errorhandler(AccountNotFound)
    def _no_account(exc: AccountNotFound) -> Response:
        return problem_response(
            Problem(
                404,
                "account-not-found",
                "Account not found",
                f"Customer {exc.customer_id!r} has no account; open one with POST /accounts.",
                {"customer_id": exc.customer_id},
            )
        )

    @app.errorhandler(AccountAlreadyExists)
    def _account_exists(exc: AccountAlreadyExists) -> Response:
        return problem_response(
            Problem(
                409,
                "account-already-exists",
                "Account already exists",
                f"Customer {exc.customer_id!r} already has an account (version {exc.version}) "
                "opened with a different request; deposit into it instead.",
                {"customer_id": exc.customer_id, "current_version": exc.version},
            )
        )

    @app.errorhandler(PaymentNeedsAccount)
    def _payment_needs_account(exc: PaymentNeedsAccount) -> Response:
        return problem_response(
            Problem(
                409,
                "account-required",
                "No account to pay from",
                f"Order {exc.order_id!r} cannot be paid: customer {exc.customer_id!r} has no "
                "account. Open one with POST /accounts, deposit funds, then retry. "
                "Nothing was recorded.",
                {"order_id": exc.order_id, "customer_id": exc.customer_id},
            )
        )

    @app.errorhandler(InsufficientFunds)
    def _insufficient(exc: InsufficientFunds) -> Response:
        missing = exc.amount_cents - exc.balance_cents
        return problem_response(
            Problem(
                409,
                "insufficient-funds",
                "Insufficient funds",
                f"Order {exc.order_id!r} costs {format_cents(exc.amount_cents)} but the account "
                f"of customer {exc.customer_id!r} holds {format_cents(exc.balance_cents)}; "
                f"deposit at least {format_cents(missing)} and retry. Nothing was recorded.",
                {
                    "order_id": exc.order_id,
                    "customer_id": exc.customer_id,
                    "balance_cents": exc.balance_cents,
                    "required_cents": exc.amount_cents,
                },
            )
        )

    @app.errorhandler(PaymentRuleViolated)
    def _payment_rule(exc: PaymentRuleViolated) -> Response:
        return problem_response(
            Problem(
                409,
                "payment-rule-violated",
                "Money movement not allowed",
                f"{exc.message}. Nothing was recorded.",
                {"field": exc.field},
            )
        )

    @app.errorhandler(AccountContention)
    def _contention(exc: AccountContention) -> Response:
        return problem_response(
            Problem(
                409,
                "account-busy",
                "Account changed concurrently",
                f"The account of customer {exc.customer_id!r} kept changing while this command "
                "was decided; nothing was recorded. Retry the same request.",
                {"customer_id": exc.customer_id},
            )
        )

    @app.errorhandler(NotAtThatPoint)
    def _not_at_that_point(exc: NotAtThatPoint) -> Response:
        return problem_response(
            Problem(
                404,
                f"{exc.kind}-not-found-at-that-point",
                f"No such {exc.kind} state",
                f"{exc.kind.capitalize()} {exc.identifier!r} had no events at "
                f"{exc.as_of.describe()}; it is now at version {exc.current_version}.",
                {
                    "order_id" if exc.kind == "order" else "customer_id": exc.identifier,
                    "current_version": exc.current_version,
                },
            )
        )

    @app.errorhandler(EventStoreUnavailable)
    def _unavailable(exc: EventStoreUnavailable) -> Response:
        return problem_response(
            Problem(
                503,
                "event-store-unavailable",
                "Event store unavailable",
                "The event log cannot accept writes right now; nothing was recorded. "
                "Retry shortly.",
                headers={"Retry-After": "1"},
            )
        )
