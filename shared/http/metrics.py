"""Request counts and latency of both services, recorded after each Flask request, with a hook
for what one service counts on top (the command side's commands).

GET /metrics itself is never recorded: a scrape is not traffic, and counting it would make
each scrape change what the next one reports.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from flask import Flask, Response, request
from prometheus_client import Counter, Histogram

from shared.http.metrics_endpoint import METRICS_PATH

log = logging.getLogger("shared.http_metrics")

UNMATCHED_ENDPOINT = "unmatched"

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route endpoint, method and status code (not /metrics).",
    ["endpoint", "method", "status"],
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request's arrival in Flask to its response, by route endpoint.",
    ["endpoint"],
)


# Where the WSGI wrapper below leaves the request's arrival time.
_STARTED_KEY = "shared.http.metrics.started"


@functools.cache
def _series(endpoint: str, method: str, status: int) -> tuple[Counter, Histogram]:
    # Labelled children, looked up once per (route, method, status), a bounded set: labels()
    # validates and locks on every call, a few microseconds a request for nothing.
    return HTTP_REQUESTS.labels(endpoint, method, str(status)), HTTP_DURATION.labels(endpoint)


class ServedRequest(NamedTuple):
    """One answered request: which route (a bounded set of names), how, and how long."""

    endpoint: str
    method: str
    status: int
    seconds: float
    response: Response


def install_http_metrics(
    app: Flask, also_record: Callable[[ServedRequest], None] | None = None
) -> None:
    """Count and time every answered request (error responses included), then `also_record` it."""

    # Clocked in a WSGI wrapper rather than before_request: a url_value_preprocessor that
    # rejects the request (the query API's impossible ids) runs before any before_request.
    # (Flask's request_started signal would do too, but its dispatch costs more than this.)
    dispatch = app.wsgi_app

    def _start_clock(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ[_STARTED_KEY] = time.perf_counter()
        return dispatch(environ, start_response)

    app.wsgi_app = _start_clock  # type: ignore[method-assign]

    @app.after_request
    def _record(response: Response) -> Response:
        started = request.environ.get(_STARTED_KEY)
        if started is None or request.path == METRICS_PATH:
            return response
        # The rule's endpoint name, never the raw path: ids in paths would make a new series
        # per order.
        endpoint = request.endpoint or UNMATCHED_ENDPOINT
        method, status = request.method, response.status_code
        seconds = time.perf_counter() - started
        try:
            count, duration = _series(endpoint, method, status)
            count.inc()
            duration.observe(seconds)
            if also_record is not None:
                also_record(ServedRequest(endpoint, method, status, seconds, response))
        except Exception:
            # The response is decided (a command may be committed): a metric must not undo it.
            log.exception("recording request metrics failed", extra={"endpoint": endpoint})
        return response
