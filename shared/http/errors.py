"""Problem Details (RFC 9457): the one place where an error becomes an HTTP response.

Handlers raise `Problem` (or a domain error mapped by the service); every HTTP error Flask or
Werkzeug raises is rendered the same way, so clients only ever parse one error shape.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:event-sourced-orders:problem:"

log = logging.getLogger("shared.errors")


class Problem(Exception):
    """An error for the client: status, a short title, a detail a person can act on, extras."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.extensions = dict(extensions or {})
        self.headers = dict(headers or {})


def problem_response(problem: Problem) -> Response:
    """Render a Problem as application/problem+json."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.path,
    }
    body.update(problem.extensions)
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in problem.headers.items():
        response.headers[name] = value
    return response


def validation_problem(errors: Mapping[str, list[str]]) -> Problem:
    """422 naming every invalid field with its messages."""
    names = ", ".join(sorted(errors))
    return Problem(
        422,
        "validation-error",
        "Invalid request fields",
        f"Fix these fields and retry: {names}",
        {"errors": dict(errors)},
    )


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Marshmallow's nested error dict -> {"lines.0.quantity": ["..."]}."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            name = str(key) if not prefix else f"{prefix}.{key}"
            flat.update(flatten_messages(value, name))
        return flat
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return {prefix or "_body": list(messages)}
    if isinstance(messages, list):
        flat = {}
        for item in messages:
            flat.update(flatten_messages(item, prefix))
        return flat
    return {prefix or "_body": [str(messages)]}


def register_problem_handlers(app: Flask) -> None:
    """Turn Problem, every HTTPException and any unexpected error into problem+json."""

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        slug = (exc.name or "error").lower().replace(" ", "-")
        headers = dict(exc.get_headers()) if status == 405 else {}
        allow = {"Allow": headers["Allow"]} if "Allow" in headers else None
        detail = exc.description or ""
        limit = current_app.config.get("MAX_CONTENT_LENGTH")
        if status == 413 and limit:
            detail = f"The request body is larger than the limit of {limit} bytes."
        return problem_response(Problem(status, slug, exc.name or "Error", detail, headers=allow))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.path})
        return problem_response(
            Problem(500, "internal-error", "Internal Server Error", "An unexpected error occurred")
        )
