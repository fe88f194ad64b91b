"""The whole system on a temp data dir against the suite's real Kafka, for fault scenarios;
each scenario's report line is printed again at the end of the session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.toxiproxy import ToxiproxyServer, ToxiproxyUnavailable, install
from tests.support.fault_report import REPORTS, header
from tests.support.faults import PROJECTOR_ARGS, stop_started_workloads
from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceRunner


@pytest.fixture(autouse=True)
def _no_client_outlives_its_scenario() -> Iterator[None]:
    """A scenario that failed half-way must not leave its clients retrying for minutes."""
    yield
    stop_started_workloads()


@pytest.fixture
def started() -> float:
    """When the scenario began (before its system started), for the report's duration."""
    return time.monotonic()


@pytest.fixture
def system(
    started: float, tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> Iterator[OrderSystem]:
    """Command API, relay, query API and projector, started; stopped (and logs shown) after."""
    with ServiceRunner(tmp_path) as runner:
        yield OrderSystem(runner, kafka_bootstrap, kafka_topic, PROJECTOR_ARGS).start()


@pytest.fixture(scope="module")
def toxiproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    """A Toxiproxy server, built with `go install` on first use."""
    try:
        install()
    except ToxiproxyUnavailable as exc:
        pytest.skip(f"network faults need Toxiproxy: {exc}")
    log_path = tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log"
    with ToxiproxyServer(log_path) as server:
        yield server


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """All scenario reports of the session as one table."""
    if not REPORTS:
        return
    terminalreporter.section("fault injection: every scenario's counts after convergence")
    terminalreporter.write_line(header())
    for report in REPORTS:
        terminalreporter.write_line(report.line())
        if report.duplicates:
            terminalreporter.write_line(f"    topic: {report.duplicates}")
