"""GET /metrics: every process's samples of one side merged, plus gauges read at scrape time.

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set, see shared/infra/metrics_dir.py) the answer is
the same whichever gunicorn worker serves it: it reads the files of all processes under the
side's root (this server's workers, and the relay or the projector). Without that variable
(the app created in-process, as tests do) it serves this process's default registry.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from flask import Flask, Response, request
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from shared.contract.principal import METRICS_READ
from shared.http.auth import requires
from shared.infra.metrics_dir import MULTIPROC_ENV, process_sample_dirs

log = logging.getLogger("shared.metrics_endpoint")

METRICS_PATH = "/metrics"


class AllProcessesCollector:
    """The merged samples of every process directory under a side's root."""

    def __init__(self, side_root: Path) -> None:
        self.side_root = side_root

    def collect(self) -> Iterable[Metric]:
        files = [str(f) for d in process_sample_dirs(self.side_root) for f in d.glob("*.db")]
        # One merge over all files: a metric every process defines (at 0 in most of them)
        # must come out as one family, summed, not as one family per directory.
        metrics: Iterable[Metric] = MultiProcessCollector.merge(  # type: ignore[no-untyped-call]
            files, accumulate=True
        )
        return metrics


class _Scrape:
    """What one scrape exposes: the process samples, then each scrape-time collector."""

    def __init__(self, samples: Collector, at_scrape: Iterable[Collector]) -> None:
        self.samples = samples
        self.at_scrape = at_scrape

    def collect(self) -> Iterator[Metric]:
        yield from self.samples.collect()
        for collector in self.at_scrape:
            try:
                yield from collector.collect()
            except Exception:
                # A gauge we cannot read now is left out; the counters are still worth serving.
                log.exception("scrape-time collector failed", extra={"collector": repr(collector)})


def install_metrics_endpoint(
    app: Flask, side_root: Path, at_scrape: Iterable[Collector] = ()
) -> None:
    """Serve GET /metrics in the Prometheus text format (OpenMetrics if the scraper asks)."""
    multiprocess = bool(os.environ.get(MULTIPROC_ENV))
    samples: Collector = AllProcessesCollector(side_root) if multiprocess else REGISTRY
    scrape = _Scrape(samples, tuple(at_scrape))

    @app.get(METRICS_PATH)
    @requires(METRICS_READ)
    def metrics() -> Response:
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return Response(encode(scrape), headers={"Content-Type": content_type})
