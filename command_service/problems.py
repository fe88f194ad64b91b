"""Maps what the application layer raises to problem+json responses of the command API."""

from __future__ import annotations

from flask import Flask, Response
from marshmallow import ValidationError

from command_service.application import VersionConflict
from command_service.domain.errors import (
    InvalidCommand,
    InvalidTransition,
    OrderAlreadyExists,
    OrderNotFound,
)
from command_service.event_store import EventStoreUnavailable
from shared.errors import Problem, flatten_messages, problem_response, validation_problem


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
