"""Readiness details: the projector's stored positions and, if Kafka answers in time, its lag.

The Kafka probe runs in a daemon thread with a hard deadline, so a dead or slow broker makes
/readyz say so instead of hanging it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import RowMapping

from shared.contract.envelope import format_timestamp
from shared.infra.config import Settings
from shared.infra.kafka import create_consumer

KAFKA_PROBE_TIMEOUT_S = 1.5


EndOffsetsReader = Callable[[Settings, float], dict[int, int]]


def projector_report(
    positions: list[RowMapping],
    settings: Settings,
    timeout_s: float = KAFKA_PROBE_TIMEOUT_S,
    read_end_offsets: EndOffsetsReader | None = None,
) -> dict[str, Any]:
    """Per-partition stored offsets, Kafka end offsets and lag (or why Kafka is unknown).

    End offsets come from a fresh client per call unless `read_end_offsets` is given.
    """
    stored = {int(row["kafka_partition"]): row for row in positions}
    report: dict[str, Any] = {"topic": settings.kafka_topic}
    try:
        end_offsets = (read_end_offsets or kafka_end_offsets)(settings, timeout_s)
    except Exception as exc:  # the broker's state must never fail readiness itself
        end_offsets = None
        report["kafka"] = {"reachable": False, "error": f"{type(exc).__name__}: {exc}"}
    else:
        report["kafka"] = {"reachable": True}
    partitions = sorted(set(stored) | set(end_offsets or {}))
    rows = []
    for partition in partitions:
        row = stored.get(partition)
        next_offset = int(row["next_offset"]) if row is not None else None
        end = end_offsets.get(partition) if end_offsets is not None else None
        rows.append(
            {
                "partition": partition,
                "next_offset": next_offset,
                "updated_at": format_timestamp(row["updated_at"]) if row is not None else None,
                "end_offset": end,
                "lag": None if end is None else max(end - (next_offset or 0), 0),
            }
        )
    report["partitions"] = rows
    lags = [row["lag"] for row in rows]
    report["total_lag"] = sum(lags) if lags and None not in lags else None
    return report


def kafka_end_offsets(settings: Settings, timeout_s: float) -> dict[int, int]:
    """partition -> end offset of the topic; raises TimeoutError past the deadline."""
    answers: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def probe() -> None:
        try:
            answers.put((True, _read_end_offsets(settings, timeout_s)))
        except Exception as exc:
            answers.put((False, exc))

    threading.Thread(target=probe, name="kafka-lag-probe", daemon=True).start()
    try:
        ok, value = answers.get(timeout=timeout_s + 0.5)
    except queue.Empty:
        raise TimeoutError(f"Kafka did not answer within {timeout_s}s") from None
    if not ok:
        raise value
    result: dict[int, int] = value
    return result


def _read_end_offsets(settings: Settings, timeout_s: float) -> dict[int, int]:
    from kafka import TopicPartition

    timeout_ms = int(timeout_s * 1000)
    consumer = create_consumer(
        settings,
        group_id=None,
        client_id="query-api-lag-probe",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=max(timeout_ms, 1000),
        fetch_max_wait_ms=100,
        allow_auto_create_topics=False,
        metrics_enabled=False,
    )
    try:
        partitions = consumer.partitions_for_topic(settings.kafka_topic)
        if not partitions:
            return {}
        tps = [TopicPartition(settings.kafka_topic, p) for p in sorted(partitions)]
        offsets = consumer.end_offsets(tps, timeout_ms=timeout_ms)
        return {tp.partition: int(offset) for tp, offset in offsets.items()}
    finally:
        consumer.close(autocommit=False, timeout_ms=500)
