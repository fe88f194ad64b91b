"""The scrape-time gauge `service_ready`: what GET /readyz would answer, for Prometheus.

/readyz is public and answers JSON, which Prometheus cannot scrape; this gauge runs the same
check at each scrape of /metrics, so an alert can say "not ready" without a blackbox prober.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from shared.http.errors import Problem

READY_METRIC = "service_ready"


class ReadinessGauge:
    """Yields service_ready = 1 if `check` passes, 0 if it raises the /readyz Problem."""

    def __init__(self, check: Callable[[], None]) -> None:
        self.check = check

    def collect(self) -> Iterator[Metric]:
        try:
            self.check()
            ready = 1
        except Problem:
            ready = 0
        yield GaugeMetricFamily(
            READY_METRIC, "1 if GET /readyz answers 200 at this scrape, else 0.", ready
        )
