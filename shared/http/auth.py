"""Deny by default: every route declares its policy, checked before its handler runs.

A route is `public` or `requires(scope, ...)` (any one of them; `admin` holds all). The app
refuses to start if a route has no policy. Errors follow RFC 6750: 401 with
`WWW-Authenticate: Bearer` (plus `error="invalid_token"` when a token was sent), 403 with
`error="insufficient_scope"`, both as problem+json.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, g, request

from shared.contract.principal import Principal
from shared.http.errors import Problem
from shared.infra.tokens import InvalidToken, TokenVerifier

REALM = "event-sourced-orders"
_POLICY_ATTRIBUTE = "auth_policy"

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Policy:
    """Who may call a route: anyone (public), or a bearer of any one of `scopes`."""

    public: bool
    scopes: frozenset[str]


class MissingPolicy(Exception):
    """A route was registered without a policy: the app refuses to start."""


def public(view: View) -> View:
    """Open without a token (health, readiness, the API document)."""
    setattr(view, _POLICY_ATTRIBUTE, Policy(True, frozenset()))
    return view


def requires(*scopes: str) -> Callable[[View], View]:
    """A verified token holding at least one of `scopes` (or `admin`)."""

    def mark(view: View) -> View:
        setattr(view, _POLICY_ATTRIBUTE, Policy(False, frozenset(scopes)))
        return view

    return mark


def policy_of(view: Callable[..., Any] | None) -> Policy | None:
    """The policy a view declared, if any."""
    return getattr(view, _POLICY_ATTRIBUTE, None)


def current_principal() -> Principal:
    """The verified caller of the request being served (routes with a scope policy only)."""
    principal: Principal = g.principal
    return principal


def routes_without_policy(app: Flask) -> list[str]:
    """Every rule whose view declares no policy."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if policy_of(app.view_functions.get(rule.endpoint)) is None
    )


def install_auth(app: Flask, verifier: TokenVerifier) -> None:
    """Check every route has a policy now, and each request against its route's policy."""
    missing = routes_without_policy(app)
    if missing:
        raise MissingPolicy(f"routes without an authorization policy: {', '.join(missing)}")

    @app.before_request
    def _authorize() -> None:
        if request.endpoint is None:
            return  # no such route: Flask answers 404/405, which reveals nothing
        policy = policy_of(app.view_functions.get(request.endpoint))
        if policy is None:
            raise forbidden(frozenset())  # registered after start-up: closed until declared
        if policy.public:
            return
        principal = bearer_principal(verifier)
        if not principal.has_any(policy.scopes):
            raise forbidden(policy.scopes)
        g.principal = principal


def bearer_principal(verifier: TokenVerifier) -> Principal:
    """The request's bearer token, verified; 401 when it is missing or not acceptable."""
    # The environ key directly: request.headers would translate the name on every request.
    header = request.environ.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise Problem(
            401,
            "unauthorized",
            "Authentication required",
            "Send a bearer token: Authorization: Bearer <token>.",
            headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'},
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid_token("the Authorization header is not 'Bearer <token>'")
    try:
        return verifier.verify(token)
    except InvalidToken as exc:
        raise _invalid_token(str(exc)) from None


def _invalid_token(reason: str) -> Problem:
    description = reason.replace('"', "'")
    return Problem(
        401,
        "invalid-token",
        "Invalid bearer token",
        f"The bearer token was refused: {reason}.",
        headers={
            "WWW-Authenticate": (
                f'Bearer realm="{REALM}", error="invalid_token", error_description="{description}"'
            )
        },
    )


def forbidden(scopes: frozenset[str], detail: str | None = None) -> Problem:
    """403 insufficient_scope naming the scopes that would do (and why, if `detail`)."""
    needed = " ".join(sorted(scopes))
    if detail is None:
        detail = (
            f"This needs a token with one of these scopes: {needed}."
            if needed
            else "This route is closed."
        )
    return Problem(
        403,
        "insufficient-scope",
        "Insufficient scope",
        detail,
        {"required_scopes": sorted(scopes)},
        headers={
            "WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", '
            f'scope="{needed}"'
        },
    )
