"""The whole system as subprocesses on a temp data dir, against the suite's real Kafka."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceRunner


@pytest.fixture
def system(tmp_path: Path, kafka_bootstrap: str, kafka_topic: str) -> Iterator[OrderSystem]:
    """Command API, relay, query API and projector, started; stopped (and logs shown) after."""
    # Leaving the block prints the output tails too: pytest shows them when the test failed.
    with ServiceRunner(tmp_path) as runner:
        yield OrderSystem(runner, kafka_bootstrap, kafka_topic).start()
