"""W3C trace context on every request: the caller's `traceparent` continued (or a new trace
started), the server span's traceparent echoed back, both ids on every log line meanwhile.
"""

from __future__ import annotations

from flask import Flask, Response, g, request

from shared.contract.traceparent import TRACEPARENT, parse_traceparent
from shared.infra.log_context import bind_log_scope, unbind_log_scope
from shared.infra.tracing import ServerSpan, current_tracing

_ENVIRON_KEY = "HTTP_TRACEPARENT"


def current_traceparent() -> str | None:
    """The traceparent of the request being served (its server span), if one was started."""
    span: ServerSpan | None = g.get("server_span")
    return span.traceparent.header() if span is not None else None


def install_trace_context(app: Flask) -> None:
    """Start a server span per request and echo its `traceparent`; install after correlation
    ids, whose id the log scope carries too."""

    @app.before_request
    def _start() -> None:
        _start_span()

    @app.after_request
    def _echo(response: Response) -> Response:
        # A url_value_preprocessor that rejected the request ran before any before_request.
        span: ServerSpan | None = g.get("server_span")
        if span is None:
            span = _start_span()
        g.response_status = response.status_code
        response.headers[TRACEPARENT] = span.traceparent.header()
        return response

    @app.teardown_request
    def _end(_exc: BaseException | None) -> None:
        span: ServerSpan | None = g.pop("server_span", None)
        if span is None:
            return
        span.end(g.pop("response_status", None))
        unbind_log_scope(g.pop("log_scope_token"))


def _start_span() -> ServerSpan:
    tracing = current_tracing()
    # An invalid traceparent is ignored and a new trace started (W3C), never a 4xx.
    incoming = parse_traceparent(request.environ.get(_ENVIRON_KEY))
    attributes = None
    if tracing.recording:
        route = request.url_rule.rule if request.url_rule is not None else None
        attributes = {
            "http.request.method": request.method,
            "url.path": request.path,
            **({"http.route": route} if route else {}),
        }
        name = f"{request.method} {route}" if route else request.method
    else:
        name = request.method
    span = g.server_span = tracing.start_server_span(name, incoming, attributes)
    g.log_scope_token = bind_log_scope(g.get("correlation_id"), span.traceparent.trace_id)
    return span
