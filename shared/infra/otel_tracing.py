"""Tracing with OpenTelemetry spans (the `otel` extra): imported only when it is configured.

Contexts cross processes as our own traceparents (the request header, the event's stored
value, ce_traceparent), turned into OpenTelemetry span contexts here; no instrumentation
library is involved, so the relay's spans descend from the stored context, not its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared.contract.traceparent import TraceParent
from shared.infra.tracing import Attributes, ProducerSpan, ServerSpan, Tracing

INSTRUMENTATION_NAME = "event-sourced-orders"


def otlp_tracing(endpoint: str, service_name: str) -> OtelTracing:
    """Spans of `service_name` batched to the OTLP/HTTP collector at `endpoint` (base URL)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
    exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return OtelTracing(provider)


class OtelTracing(Tracing):
    """Records spans with the given provider (its processors decide where they go)."""

    recording = True

    def __init__(self, provider: trace.TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)

    def start_server_span(
        self, name: str, incoming: TraceParent | None, attributes: Attributes | None = None
    ) -> ServerSpan:
        span = self._tracer.start_span(
            name, context=_context_of(incoming), kind=SpanKind.SERVER, attributes=attributes
        )
        # Current until the request ends, so the append's span is its child.
        token = otel_context.attach(trace.set_span_in_context(span))
        return _OtelServerSpan(span, token)

    def span(self, name: str) -> AbstractContextManager[None]:
        return self._current_span(name, None, SpanKind.INTERNAL, None)

    def start_producer_span(
        self, name: str, parent: TraceParent | None, attributes: Attributes | None = None
    ) -> ProducerSpan:
        span = self._tracer.start_span(
            name, context=_context_of(parent), kind=SpanKind.PRODUCER, attributes=attributes
        )
        return _OtelProducerSpan(span)

    def consumer_span(
        self, name: str, parent: TraceParent | None, attributes: Attributes | None = None
    ) -> AbstractContextManager[None]:
        return self._current_span(name, _context_of(parent), SpanKind.CONSUMER, attributes)

    def current_span(self) -> TraceParent | None:
        span = trace.get_current_span()
        return traceparent_of(span) if span.get_span_context().is_valid else None

    @contextmanager
    def _current_span(
        self,
        name: str,
        parent: otel_context.Context | None,
        kind: SpanKind,
        attributes: Attributes | None,
    ) -> Iterator[None]:
        # parent None: a child of the current span (start_as_current_span's own rule).
        with self._tracer.start_as_current_span(
            name, context=parent, kind=kind, attributes=attributes
        ):
            yield


class _OtelServerSpan(ServerSpan):
    def __init__(self, span: trace.Span, token: object) -> None:
        super().__init__(traceparent_of(span))
        self._span = span
        self._token = token

    def end(self, status_code: int | None = None) -> None:
        if status_code is not None:
            self._span.set_attribute("http.response.status_code", status_code)
        # Server spans are errors only for 5xx (OpenTelemetry's HTTP conventions).
        if status_code is None or status_code >= 500:
            self._span.set_status(Status(StatusCode.ERROR))
        self._span.end()
        otel_context.detach(self._token)  # type: ignore[arg-type]


class _OtelProducerSpan(ProducerSpan):
    def __init__(self, span: trace.Span) -> None:
        self._span = span
        self.traceparent = traceparent_of(span)

    def end(self, error: BaseException | None = None) -> None:
        if error is not None:
            self._span.record_exception(error)
            self._span.set_status(Status(StatusCode.ERROR, repr(error)))
        self._span.end()


def traceparent_of(span: trace.Span) -> TraceParent:
    """The span's identity as a traceparent."""
    ctx = span.get_span_context()
    return TraceParent(f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}", f"{ctx.trace_flags:02x}")


def _context_of(parent: TraceParent | None) -> otel_context.Context:
    """A context whose current span is the remote `parent`; an empty one (a new trace) if None."""
    if parent is None:
        return otel_context.Context()
    remote = trace.SpanContext(
        trace_id=int(parent.trace_id, 16),
        span_id=int(parent.span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(int(parent.flags, 16)),
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(remote), otel_context.Context())
