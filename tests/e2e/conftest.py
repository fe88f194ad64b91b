"""The whole system as subprocesses on a temp data dir, against the suite's real Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import ServiceRunner
from tests.support.system import OrderSystem


@pytest.fixture
def system(tmp_path: Path, kafka_bootstrap: str, kafka_topic: str) -> Iterator[OrderSystem]:
    """Command API, relay, query API and projector, started; stopped (and logs shown) after."""
    runner = ServiceRunner(tmp_path)
    try:
        yield OrderSystem(runner, kafka_bootstrap, kafka_topic).start()
    finally:
        runner.stop_all()
        # Captured output is only shown for failing tests, which is when the tails matter.
        runner.print_tails()
