"""Console sign-in: a pasted bearer token, verified like the APIs verify it, kept in the signed
session cookie (HttpOnly, SameSite=Strict, Secure under TLS), and a CSRF token on every form.

Deny by default as in the APIs: every route declares `public` or `requires(...)`
(shared.http.auth's markers), the app refuses to start otherwise, and a page needing a scope
sends a visitor without a valid token to the sign-in page.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Request, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response as BaseResponse

from shared.contract.principal import Principal
from shared.http.auth import MissingPolicy, policy_of, routes_without_policy
from shared.infra.tokens import InvalidToken, TokenVerifier

SESSION_COOKIE = "console_session"
CSRF_FIELD = "csrf_token"


class TlsAwareSessions(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the request came over TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or _is_tls(request)


def _is_tls(req: Request) -> bool:
    return req.is_secure


def load_secret_key(path: Path) -> bytes:
    """The session-signing key, made on first start (0600), so a restart keeps sessions."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    path.touch(mode=0o600)
    path.write_bytes(key)
    return key


def install_sign_in(app: Flask, verifier: TokenVerifier, secret_key: bytes) -> None:
    """Session cookie settings, the policy check of every route, CSRF on every POST."""
    missing = routes_without_policy(app)
    if missing:
        raise MissingPolicy(f"console routes without a policy: {', '.join(missing)}")
    app.secret_key = secret_key
    app.session_interface = TlsAwareSessions()
    app.config.update(
        SESSION_COOKIE_NAME=SESSION_COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        PERMANENT_SESSION_LIFETIME=12 * 3600,
    )
    app.extensions["console_verifier"] = verifier

    @app.before_request
    def _authorize() -> BaseResponse | None:
        if request.method == "POST":
            check_csrf()
        if request.endpoint is None:
            return None
        policy = policy_of(app.view_functions.get(request.endpoint))
        if policy is None:
            abort(403)
        if policy.public:
            return None
        principal = signed_in_principal()
        if principal is None:
            return redirect(url_for("console.sign_in_page", next=request.full_path))
        if not principal.has_any(policy.scopes):
            g.needed_scopes = sorted(policy.scopes)
            abort(403)
        g.principal = principal
        return None

    @app.context_processor
    def _template_globals() -> dict[str, Any]:
        return {"csrf_token": csrf_token(), "principal": g.get("principal")}


def signed_in_principal() -> Principal | None:
    """The session's token, verified now (it may have expired since sign-in)."""
    token = session.get("token")
    if not isinstance(token, str):
        return None
    verifier: TokenVerifier = _app_verifier()
    try:
        return verifier.verify(token)
    except InvalidToken:
        session.pop("token", None)
        return None


def sign_in(token: str) -> Principal:
    """Verify the pasted token and keep it in the session; InvalidToken if refused."""
    principal = _app_verifier().verify(token)
    session.clear()
    session["token"] = token
    session["csrf"] = secrets.token_urlsafe(32)  # a new session gets a new CSRF token
    session.permanent = True
    return principal


def sign_out() -> None:
    """Forget the token."""
    session.clear()


def user_token() -> str:
    """The signed-in user's own token (for actions that change something)."""
    token: str = session["token"]
    return token


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    value: str = session["csrf"]
    return value


def check_csrf() -> None:
    """400 unless the form carries this session's CSRF token."""
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
        abort(400, description="The form's CSRF token is missing or stale; reload the page.")


def _app_verifier() -> TokenVerifier:
    verifier: TokenVerifier = current_app.extensions["console_verifier"]
    return verifier
