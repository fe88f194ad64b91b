"""Request counts and latency of both services, recorded after each Flask request, with a hook
for what one service counts on top (the command side's commands).

GET /metrics itself is never recorded: a scrape is not traffic, and counting it would make
each scrape change what the next one reports.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, g, request, request_started
from prometheus_client import Counter, Histogram

from shared.metrics_endpoint import METRICS_PATH

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class ServedRequest:
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

    # On the request_started signal rather than before_request: a url_value_preprocessor that
    # rejects the request (the query API's impossible ids) runs before any before_request.
    def _start_clock(_sender: Flask, **_extra: object) -> None:
        g.request_started = time.perf_counter()

    request_started.connect(_start_clock, app, weak=False)

    @app.after_request
    def _record(response: Response) -> Response:
        started = g.get("request_started")
        if started is None or request.path == METRICS_PATH:
            return response
        # The rule's endpoint name, never the raw path: ids in paths would make a new series
        # per order.
        endpoint = request.endpoint or UNMATCHED_ENDPOINT
        served = ServedRequest(
            endpoint, request.method, response.status_code, time.perf_counter() - started, response
        )
        try:
            HTTP_REQUESTS.labels(served.endpoint, served.method, str(served.status)).inc()
            HTTP_DURATION.labels(served.endpoint).observe(served.seconds)
            if also_record is not None:
                also_record(served)
        except Exception:
            # The response is decided (a command may be committed): a metric must not undo it.
            log.exception("recording request metrics failed", extra={"endpoint": endpoint})
        return response
