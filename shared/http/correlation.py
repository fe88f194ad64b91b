"""Correlation ids: accepted from the caller or generated, returned on every response."""

from __future__ import annotations

import re

from flask import Flask, Response, g, request

from shared.http.random_ids import uuid4_text

CORRELATION_HEADER = "X-Correlation-ID"
# The Kafka message header the relay copies the event's correlation id into.
KAFKA_CORRELATION_HEADER = "correlation_id"
# X-Correlation-ID and its fallback X-Request-ID as WSGI environ keys: read directly, since
# request.headers translates the name on every lookup.
_ENVIRON_KEY = "HTTP_X_CORRELATION_ID"
_FALLBACK_ENVIRON_KEY = "HTTP_X_REQUEST_ID"
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def current_correlation_id() -> str:
    """The id of the request being served."""
    value: str = g.correlation_id
    return value


def install_correlation_ids(app: Flask) -> None:
    """Take X-Correlation-ID (or X-Request-ID) if it is sane, else make one; echo it back."""

    @app.before_request
    def _take() -> None:
        g.correlation_id = _correlation_id_of_request()

    @app.after_request
    def _echo(response: Response) -> Response:
        # A url_value_preprocessor that rejects the request (the query API's impossible ids)
        # runs before any before_request function; the response still carries an id.
        correlation_id = g.get("correlation_id")
        if not correlation_id:
            correlation_id = g.correlation_id = _correlation_id_of_request()
        response.headers[CORRELATION_HEADER] = correlation_id
        return response


def _correlation_id_of_request() -> str:
    environ = request.environ
    given: str | None = environ.get(_ENVIRON_KEY) or environ.get(_FALLBACK_ENVIRON_KEY)
    # An id we cannot log or forward safely is replaced rather than rejected: tracing
    # must never be the reason a command fails.
    if given is not None and _ACCEPTABLE.fullmatch(given) is not None:
        return given
    return uuid4_text()
