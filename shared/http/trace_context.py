"""W3C trace context on every request: the caller's `traceparent` continued (or a new trace
started), the server span's traceparent echoed back, both ids on every log line meanwhile.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, request

from shared.contract.traceparent import TRACEPARENT, parse_traceparent
from shared.infra.log_context import LogIds, ScopeToken, bind_log_scope, unbind_log_scope
from shared.infra.tracing import ServerSpan, current_tracing

_ENVIRON_KEY = "HTTP_TRACEPARENT"


class _RequestTrace:
    """What the request's hooks share, kept as one attribute of `g` (each access costs)."""

    __slots__ = ("header", "scope", "span", "status")

    def __init__(self, span: ServerSpan, scope: ScopeToken) -> None:
        self.span = span
        self.header = span.traceparent.header()
        self.scope = scope
        self.status: int | None = None


def current_traceparent() -> str | None:
    """The traceparent of the request being served (its server span), if one was started."""
    trace: _RequestTrace | None = g.get("request_trace")
    return trace.header if trace is not None else None


def install_trace_context(app: Flask) -> None:
    """Start a server span per request and echo its `traceparent`; install after correlation
    ids, whose id the log scope carries too."""

    @app.before_request
    def _start() -> None:
        _start_trace(g._get_current_object())

    @app.after_request
    def _echo(response: Response) -> Response:
        state = g._get_current_object()
        # A url_value_preprocessor that rejected the request ran before any before_request.
        trace: _RequestTrace | None = getattr(state, "request_trace", None)
        if trace is None:
            trace = _start_trace(state)
        trace.status = response.status_code
        response.headers[TRACEPARENT] = trace.header
        return response

    @app.teardown_request
    def _end(_exc: BaseException | None) -> None:
        state = g._get_current_object()
        trace: _RequestTrace | None = state.__dict__.pop("request_trace", None)
        if trace is not None:
            trace.span.end(trace.status)
            unbind_log_scope(trace.scope)


def _start_trace(state: Any) -> _RequestTrace:
    tracing = current_tracing()
    environ = request.environ
    # An invalid traceparent is ignored and a new trace started (W3C), never a 4xx.
    given = environ.get(_ENVIRON_KEY)
    incoming = parse_traceparent(given) if given is not None else None
    if tracing.recording:
        name, attributes = _span_name_and_attributes()
        span = tracing.start_server_span(name, incoming, attributes)
    else:
        span = tracing.start_server_span(environ["REQUEST_METHOD"], incoming)
    ids = LogIds(getattr(state, "correlation_id", None), span.traceparent.trace_id)
    scope = bind_log_scope(ids)
    trace = state.request_trace = _RequestTrace(span, scope)
    return trace


def _span_name_and_attributes() -> tuple[str, dict[str, Any]]:
    """OpenTelemetry's HTTP server conventions: `{method} {route}` and the request's basics."""
    route = request.url_rule.rule if request.url_rule is not None else None
    attributes: dict[str, Any] = {"http.request.method": request.method, "url.path": request.path}
    if route is None:
        return request.method, attributes
    attributes["http.route"] = route
    return f"{request.method} {route}", attributes
