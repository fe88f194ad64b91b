"""What a committed projector batch did: one DEBUG log line per applied event, and a report
for an observer (the projector's metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from query_service.projection.events import Event
from query_service.projector.message_trace import message_trace

# A child of the projector's logger: its lines read as the projector's, yet can be tuned alone.
log = logging.getLogger("query_service.projector.applied")


@dataclass(frozen=True)
class BatchReport:
    """What a committed batch did, for the observer."""

    applied: Sequence[Event]
    duplicates: int
    parked: int
    gaps: int
    repaired: int  # events read from the command API to fill gaps, applied before their batch's
    seconds: float


class ProjectorObserver(Protocol):
    """Told what each batch did (the projector's metrics)."""

    def batch_committed(self, report: BatchReport) -> None:
        """A batch's rows and positions were committed."""

    def batch_retried(self) -> None:
        """A batch was rolled back and will be read again."""


def correlation_id(record: Any) -> str | None:
    """The correlation id the relay put in a message's headers, if any."""
    return message_trace(record).correlation_id


def applied_lines_wanted() -> bool:
    """Whether `log_applied` lines would be written (the projector logs at DEBUG)."""
    return log.isEnabledFor(logging.DEBUG)


def log_applied(record: Any, event: Event) -> None:
    """One DEBUG line for an applied message: the event, where it was read, its correlation
    and trace ids. DEBUG, not INFO: at 10k events/s the lines would drown every other one."""
    trace = message_trace(record)
    log.debug(
        "applied event",
        extra={
            "event_id": event.event_id,
            "type": type(event).__name__,
            "stream_id": event.stream_id,
            "version": event.version,
            "position": event.position,
            "correlation_id": trace.correlation_id,
            "trace_id": trace.trace_id,
            "partition": record.partition,
            "offset": record.offset,
        },
    )
