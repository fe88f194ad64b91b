"""The process's tracing: plain traceparents by default, OpenTelemetry spans when configured.

Without the `otel` extra (or without OTEL_EXPORTER_OTLP_ENDPOINT) `Tracing` records nothing:
a request still gets a traceparent (the caller's trace continued, or a new one) that its
events store and the relay forwards, at the cost of a few random bytes. `configure_tracing`
installs the OpenTelemetry implementation (otel_tracing.py, imported only then) when the
endpoint is set. Callers ask `current_tracing()` and check `recording` before building span
attributes on a hot path.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from shared.contract.traceparent import TraceParent, continue_trace
from shared.infra.config import Settings

log = logging.getLogger("shared.tracing")

Attributes = Mapping[str, Any]
_NOTHING: AbstractContextManager[None] = nullcontext()


class ServerSpan:
    """A request's span; plain, it is only an identity."""

    def __init__(self, traceparent: TraceParent) -> None:
        self.traceparent = traceparent

    def end(self, status_code: int | None = None) -> None:
        """The response was sent with this status (None: the request failed unanswered)."""


class ProducerSpan:
    """The span of publishing one message; plain, it has no identity of its own."""

    # What the message's ce_traceparent should carry instead of the event's stored value.
    traceparent: TraceParent | None = None

    def end(self, error: BaseException | None = None) -> None:
        """The broker acknowledged the message, or `error` says why not."""


_NO_PRODUCER_SPAN = ProducerSpan()


class Tracing:
    """Records no spans; traceparents still flow (the default)."""

    recording = False

    def start_server_span(
        self, name: str, incoming: TraceParent | None, attributes: Attributes | None = None
    ) -> ServerSpan:
        """Start serving a request: the caller's trace continued, or a new one."""
        return ServerSpan(continue_trace(incoming))

    def span(self, name: str) -> AbstractContextManager[None]:
        """A child span of whatever span is current, for the duration of a with block."""
        return _NOTHING

    def start_producer_span(
        self, name: str, parent: TraceParent | None, attributes: Attributes | None = None
    ) -> ProducerSpan:
        """Start publishing one message, as a child of `parent` (the stored context)."""
        return _NO_PRODUCER_SPAN

    def consumer_span(
        self, name: str, parent: TraceParent | None, attributes: Attributes | None = None
    ) -> AbstractContextManager[None]:
        """Handling one message, as a child of `parent` (its ce_traceparent), in a with block."""
        return _NOTHING

    def current_span(self) -> TraceParent | None:
        """The span current in this context, to send as the parent of a call out; plain: none."""
        return None


_current: Tracing = Tracing()


def current_tracing() -> Tracing:
    """The tracing this process installed (plain unless configured)."""
    return _current


def install_tracing(tracing: Tracing) -> Tracing:
    """Make `tracing` the process's; the one it replaces (tests put it back)."""
    global _current
    previous, _current = _current, tracing
    return previous


def configure_tracing(settings: Settings, service_name: str) -> None:
    """Export OpenTelemetry spans over OTLP/HTTP if OTEL_EXPORTER_OTLP_ENDPOINT is set.

    Once per process: spans already being recorded (an earlier call, or a test's exporter)
    are kept. Without the `otel` extra it says so in the log and records nothing.
    """
    endpoint = settings.otel_exporter_otlp_endpoint
    if endpoint is None or _current.recording:
        return
    try:
        from shared.infra.otel_tracing import otlp_tracing
    except ImportError as exc:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the otel extra is not installed; "
            "no spans are exported",
            extra={"error": repr(exc)},
        )
        return
    install_tracing(otlp_tracing(endpoint, service_name))
    log.info("exporting spans", extra={"endpoint": endpoint, "service_name": service_name})
