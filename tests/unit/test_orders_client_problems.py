"""orders_client's reading of problem+json and its resend delays (pure: no I/O)."""

from __future__ import annotations

import pytest

from command_service.http.problems import RULES, UNAVAILABLE
from orders_client import (
    BadRequest,
    Conflict,
    InsufficientFunds,
    NotAtThatPoint,
    ProblemError,
    ServerError,
    ServiceUnavailable,
    VersionConflict,
)
from orders_client.errors import PROBLEM_TYPE_BASE
from orders_client.problem_types import BY_SLUG, problem_error
from orders_client.transport import MAX_RETRY_AFTER_S, RetryPolicy


def test_every_domain_problem_of_the_command_service_has_its_own_exception() -> None:
    slugs = {rule.slug for rule in RULES if isinstance(rule.slug, str)}
    slugs |= {"order-not-found-at-that-point", "account-not-found-at-that-point"}

    assert slugs - set(BY_SLUG) == set()
    assert len({BY_SLUG[s] for s in slugs}) == len(slugs) - 1  # both *-at-that-point: one class


def test_a_problem_becomes_its_class_with_its_members() -> None:
    body = {
        "type": PROBLEM_TYPE_BASE + "insufficient-funds",
        "title": "Insufficient funds",
        "status": 409,
        "detail": "Order 'o-1' costs 30.00 ...",
        "instance": "/orders/o-1/status",
        "balance_cents": 1000,
        "required_cents": 3000,
    }

    error = problem_error(409, body, {"X-Correlation-ID": "abc"})

    assert type(error) is InsufficientFunds and isinstance(error, Conflict)
    assert (error.balance_cents, error.required_cents) == (1000, 3000)
    assert (error.status, error.slug, error.title) == (409, "insufficient-funds", body["title"])
    assert error.instance == error.extensions["instance"] == "/orders/o-1/status"
    assert error.headers["X-Correlation-ID"] == "abc"


def test_unknown_types_fall_back_to_their_status_family() -> None:
    body = {"type": PROBLEM_TYPE_BASE + "something-new", "title": "New", "status": 400}
    assert type(problem_error(400, body)) is BadRequest
    unavailable = {"type": f"{PROBLEM_TYPE_BASE}{UNAVAILABLE.slug}"}
    assert type(problem_error(503, unavailable)) is ServiceUnavailable
    assert type(problem_error(500, None)) is ServerError
    teapot = problem_error(418, "<html>")
    assert type(teapot) is ProblemError
    assert (teapot.type, teapot.title) == ("about:blank", "HTTP 418")


def test_a_version_conflict_without_an_expected_version_is_contention() -> None:
    body = {"type": PROBLEM_TYPE_BASE + "version-conflict", "expected_version": None}
    conflict = problem_error(409, {**body, "current_version": 3})
    assert isinstance(conflict, VersionConflict)
    assert (conflict.expected_version, conflict.current_version) == (None, 3)
    at = problem_error(404, {"type": PROBLEM_TYPE_BASE + "account-not-found-at-that-point"})
    assert isinstance(at, NotAtThatPoint)


@pytest.mark.parametrize(("retry_after", "delay"), [("1", 1.0), (" 3 ", 3.0), ("999", 30.0)])
def test_retry_after_seconds_decide_the_delay(retry_after: str, delay: float) -> None:
    assert RetryPolicy().delay(1, retry_after) == min(delay, MAX_RETRY_AFTER_S)


def test_backoff_doubles_up_to_its_ceiling_without_retry_after() -> None:
    policy = RetryPolicy(backoff_s=0.1, max_backoff_s=0.4)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (9, 0.4)]:
        delay = policy.delay(attempt, "Wed, 21 Oct 2026 07:28:00 GMT")  # a date: not used
        assert ceiling / 2 <= delay <= ceiling
