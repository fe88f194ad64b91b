"""Samples the command API's /metrics every few seconds and keeps the recent minutes in memory:
command rate and p99 latency between samples, and the log and relay gauges of the last one."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from ops.console.service_client import ServiceClient, ServiceError

log = logging.getLogger("ops.console.metrics")
KEPT_S = 15 * 60


@dataclass(frozen=True)
class Scrape:
    """What one /metrics answer said that the console needs."""

    at: float
    commands: float
    buckets: dict[float, float]  # le -> cumulative count, summed over commands
    gauges: dict[str, list[tuple[dict[str, str], float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class RatePoint:
    """Commands per second and the p99 latency (ms; None without commands) over one interval."""

    at: float
    rate: float
    p99_ms: float | None


def parse_scrape(text: str, at: float) -> Scrape:
    """The counters summed over labels, the histogram's buckets, and every gauge's samples."""
    commands, buckets = 0.0, dict[float, float]()
    gauges: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "commands_total":
                commands += sample.value
            elif sample.name == "command_duration_seconds_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif family.type == "gauge":
                gauges.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return Scrape(at, commands, buckets, gauges)


def rate_between(before: Scrape, after: Scrape) -> RatePoint:
    """The interval's command rate and p99 (the upper bound of the bucket holding it)."""
    seconds = max(after.at - before.at, 1e-6)
    count = max(after.commands - before.commands, 0.0)
    deltas = sorted((le, after.buckets[le] - before.buckets.get(le, 0.0)) for le in after.buckets)
    total = deltas[-1][1] if deltas else 0.0
    p99 = None
    if total > 0:
        le = next(le for le, cumulative in deltas if cumulative >= 0.99 * total)
        p99 = None if math.isinf(le) else le * 1000
    return RatePoint(after.at, count / seconds, p99)


class MetricsSampler:
    """The background scraper; `points` and `latest` are what the overview draws."""

    def __init__(self, command_api: ServiceClient, interval_s: float) -> None:
        self.command_api = command_api
        self.interval_s = interval_s
        self.latest: Scrape | None = None
        self.error: str | None = None
        self._points: deque[RatePoint] = deque(maxlen=max(int(KEPT_S / interval_s), 2))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-metrics", daemon=True)

    def start(self) -> None:
        """Sample in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling."""
        self._stop.set()

    def points(self) -> list[RatePoint]:
        """The kept interval points, oldest first."""
        with self._lock:
            return list(self._points)

    def sample(self) -> None:
        """Scrape once and add the interval since the previous scrape."""
        scrape = parse_scrape(self.command_api.get_text("/metrics"), time.time())
        with self._lock:
            if self.latest is not None:
                self._points.append(rate_between(self.latest, scrape))
            self.latest = scrape
        self.error = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample()
            except (ServiceError, ValueError) as exc:
                self.error = str(exc)
                log.warning("cannot sample the command API's metrics", extra={"error": str(exc)})
            self._stop.wait(self.interval_s)
