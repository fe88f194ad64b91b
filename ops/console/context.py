"""What every console page reaches: the two API clients, the audit index and the samplers."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from ops.console.config import ConsoleSettings
from ops.console.indexer import LogIndexer
from ops.console.metrics_sampler import MetricsSampler
from ops.console.search import AuditIndex
from ops.console.service_client import ServiceClient


@dataclass(frozen=True)
class Console:
    """The app's long-lived parts (one console process: the samples live in its memory)."""

    settings: ConsoleSettings
    command_api: ServiceClient
    query_api: ServiceClient
    index: AuditIndex
    indexer: LogIndexer
    sampler: MetricsSampler


def console() -> Console:
    """The running app's Console."""
    parts: Console = current_app.extensions["console"]
    return parts
