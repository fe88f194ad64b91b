"""Which tracing a process gets: plain unless OTEL_EXPORTER_OTLP_ENDPOINT is set and the otel
extra is installed; then OpenTelemetry spans of the named service, batched to OTLP/HTTP."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from shared.infra.config import Settings
from shared.infra.otel_tracing import OtelTracing
from shared.infra.tracing import Tracing, configure_tracing, current_tracing, install_tracing


@pytest.fixture(autouse=True)
def plain_tracing() -> Iterator[None]:
    previous = install_tracing(Tracing())
    try:
        yield
    finally:
        installed = install_tracing(previous)
        if isinstance(installed, OtelTracing):
            installed.provider.shutdown()  # type: ignore[attr-defined]


def test_without_the_endpoint_nothing_is_recorded() -> None:
    configure_tracing(Settings.from_env({}), "command-api")
    assert not current_tracing().recording


def test_with_the_endpoint_spans_of_the_service_are_batched_to_its_traces_path() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318/"})
    configure_tracing(settings, "query-projector")
    tracing = current_tracing()
    assert isinstance(tracing, OtelTracing)
    provider = tracing.provider
    assert isinstance(provider, TracerProvider)
    assert provider.resource.attributes["service.name"] == "query-projector"
    [processor] = provider._active_span_processor._span_processors
    assert isinstance(processor, BatchSpanProcessor)
    exporter = processor._batch_processor._exporter
    assert isinstance(exporter, OTLPSpanExporter)
    assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"


def test_a_second_call_keeps_the_tracing_already_recording() -> None:
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    configure_tracing(settings, "command-api")
    first = current_tracing()
    configure_tracing(settings, "command-api")
    assert current_tracing() is first


def test_without_the_extra_the_endpoint_is_reported_and_nothing_recorded(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "shared.infra.otel_tracing", None)  # import fails
    settings = Settings.from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    with caplog.at_level(logging.WARNING, "shared.tracing"):
        configure_tracing(settings, "command-relay")
    assert not current_tracing().recording
    assert "otel extra is not installed" in caplog.text
