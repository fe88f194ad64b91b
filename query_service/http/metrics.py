"""The query side's Prometheus metrics, defined once: the projector's batches, and its lag and
parked events read at scrape time (lag from the read model's positions and Kafka's end offsets).

The query API's gunicorn workers and the projector write their samples under one root (see
shared/infra/metrics_dir.py), so the query API's GET /metrics shows both.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator

from flask import Flask
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from query_service.projector.batch_report import BatchReport
from query_service.projector.end_offsets import TopicEndOffsets
from query_service.projector.lag import projector_report
from query_service.read_model.views import ReadViews
from shared.http.metrics import install_http_metrics
from shared.http.metrics_endpoint import install_metrics_endpoint
from shared.infra.config import Settings

log = logging.getLogger("query_service.metrics")

# Shorter than /readyz's probe: a scrape with Kafka down should still answer well within a
# scraper's usual timeout.
KAFKA_PROBE_TIMEOUT_S = 1.0

EVENTS_APPLIED = Counter(
    "projector_events_applied_total",
    "Events the projector applied to the read model (committed), by event type.",
    ["type"],
)
EVENTS_DUPLICATE = Counter(
    "projector_events_duplicate_total",
    "Messages skipped because the read model already had their version.",
)
EVENTS_PARKED = Counter(
    "projector_events_parked_total",
    "Messages the projector could not apply and parked in parked_events.",
)
GAP_REPAIRS = Counter(
    "projector_gap_repairs_total",
    "Version gaps met, each repaired from the command API (or its event parked).",
)
EVENTS_REPAIRED = Counter(
    "projector_events_repaired_total",
    "Events read from the command API to fill version gaps, and applied.",
)
BATCH_RETRIES = Counter(
    "projector_batch_retries_total",
    "Batches rolled back (database or command API unavailable) and read again.",
)
BATCH_APPLY_SECONDS = Histogram(
    "projector_batch_apply_seconds",
    "Time to apply one consumed batch and commit it with its offsets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class ProjectorMetrics:
    """The projector's observer (see query_service/projector/consumer.py): batches as metrics."""

    def batch_committed(self, report: BatchReport) -> None:
        # Summed per batch: one mmap write per type instead of one per event.
        for event_type, count in Tally(type(e).__name__ for e in report.applied).items():
            EVENTS_APPLIED.labels(event_type).inc(count)
        if report.duplicates:
            EVENTS_DUPLICATE.inc(report.duplicates)
        if report.parked:
            EVENTS_PARKED.inc(report.parked)
        if report.gaps:
            GAP_REPAIRS.inc(report.gaps)
        if report.repaired:
            EVENTS_REPAIRED.inc(report.repaired)
        BATCH_APPLY_SECONDS.observe(report.seconds)

    def batch_retried(self) -> None:
        BATCH_RETRIES.inc()


class ProjectorLag:
    """Scrape-time gauges: lag per partition and in total, Kafka's reachability, parked rows."""

    def __init__(self, views: ReadViews, settings: Settings) -> None:
        self.views = views
        self.settings = settings
        self.end_offsets = TopicEndOffsets()

    def collect(self) -> Iterator[Metric]:
        parked = self.views.parked_count()
        positions = self.views.positions(self.settings.kafka_topic)
        report = projector_report(positions, self.settings, KAFKA_PROBE_TIMEOUT_S, self.end_offsets)
        yield GaugeMetricFamily(
            "read_model_parked_events", "Parked messages waiting for an operator.", parked
        )
        reachable = bool(report["kafka"]["reachable"])
        yield GaugeMetricFamily(
            "kafka_up", "1 if Kafka answered the end-offset probe of this scrape.", int(reachable)
        )
        if not reachable:
            return  # lag is unknown, and a made-up number would be worse than none
        per_partition = GaugeMetricFamily(
            "projector_lag_events",
            "Messages on a partition after the projector's stored position.",
            labels=["partition"],
        )
        for row in report["partitions"]:
            if row["lag"] is not None:
                per_partition.add_metric([str(row["partition"])], row["lag"])
        yield per_partition
        if report["total_lag"] is not None:
            yield GaugeMetricFamily(
                "projector_total_lag_events",
                "Messages on the topic after the projector's stored positions, all partitions.",
                report["total_lag"],
            )


def install_query_metrics(
    app: Flask, views: ReadViews, settings: Settings, readiness: Collector
) -> None:
    """Time every request and serve GET /metrics for the query side."""
    install_http_metrics(app)
    install_metrics_endpoint(
        app, settings.metrics_dir / "query", [readiness, ProjectorLag(views, settings)]
    )
