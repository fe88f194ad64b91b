"""A topic's end offsets from one long-lived Kafka client per process (for GET /metrics).

/readyz's probe (health.py) opens a fresh client per call, which costs ~120 ms, most of it
the first metadata fetch. A scrape should be cheap, so this keeps the client (and its
metadata) between calls: ~5 ms. Calls are serialized (kafka-python clients are not
thread-safe) and bounded by the caller's timeout; after any failure the client is dropped
and, for a few seconds, calls fail at once instead of waiting for a dead broker again (which
would also log kafka-python's connection errors on every scrape).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from shared.infra.config import Settings
from shared.infra.kafka import create_consumer

log = logging.getLogger("query_service.topic_end_offsets")

RETRY_AFTER_S = 5.0


class KafkaNotRetriedYet(Exception):
    """The last read failed less than RETRY_AFTER_S ago; Kafka was not asked again."""


class TopicEndOffsets:
    """Reads partition -> end offset of settings.kafka_topic; raises if Kafka does not answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._consumer: Any = None
        self._failed: tuple[float, str] | None = None  # when, and what

    def __call__(self, settings: Settings, timeout_s: float) -> dict[int, int]:
        if not self._lock.acquire(timeout=timeout_s):
            raise TimeoutError(f"another end-offset read took longer than {timeout_s}s")
        try:
            if self._failed is not None and time.monotonic() - self._failed[0] < RETRY_AFTER_S:
                raise KafkaNotRetriedYet(f"Kafka failed moments ago: {self._failed[1]}")
            try:
                offsets = self._read(settings, int(timeout_s * 1000))
            except Exception as exc:
                self._close()
                self._failed = (time.monotonic(), f"{type(exc).__name__}: {exc}")
                raise
            self._failed = None
            return offsets
        finally:
            self._lock.release()

    def _read(self, settings: Settings, timeout_ms: int) -> dict[int, int]:
        from kafka import TopicPartition

        if self._consumer is None:
            self._consumer = create_consumer(
                settings,
                group_id=None,
                client_id="query-api-metrics",
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=max(timeout_ms, 1000),
                allow_auto_create_topics=False,
                metrics_enabled=False,
            )
        partitions = self._consumer.partitions_for_topic(settings.kafka_topic)
        if not partitions:
            return {}
        tps = [TopicPartition(settings.kafka_topic, p) for p in sorted(partitions)]
        offsets = self._consumer.end_offsets(tps, timeout_ms=timeout_ms)
        return {tp.partition: int(offset) for tp, offset in offsets.items()}

    def _close(self) -> None:
        if self._consumer is not None:
            try:
                self._consumer.close(autocommit=False, timeout_ms=500)
            except Exception:
                log.warning("closing the end-offset client failed", exc_info=True)
            self._consumer = None
