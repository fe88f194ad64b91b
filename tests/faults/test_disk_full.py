"""The event log's disk refuses writes: its file system (a size-limited tmpfs holding only the
event log) is filled to the last byte under load. Commands must fail cleanly with 503
problem+json and record nothing, reads keep working, nothing acknowledged is lost, and
service resumes as soon as space returns.

chmod cannot make a file read-only for root, and a read-only remount is refused while SQLite
holds the files open for writing, so a full file system (ENOSPC) is the real refusal here.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.auth import api_session
from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    PROJECTOR_ARGS,
    SeparateEventLogRunner,
    SmallDisk,
    SteadyWorkload,
    small_disk_or_skip,
    wait_for_load,
)
from tests.support.order_system import OrderSystem
from tests.support.processes import wait_until
from tests.support.workload import Acknowledged

pytestmark = pytest.mark.kafka

CLIENTS = 8
ORDERS = 150
RATE = 12.0
FULL_FOR_S = 4.0  # how long the disk stays full once commands are refused
UNAVAILABLE = "urn:event-sourced-orders:problem:event-store-unavailable"


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 64 MiB tmpfs for the event log alone."""
    with small_disk_or_skip(tmp_path, "event-log-disk", size_mb=64) as disk:
        yield disk


@pytest.fixture
def system_on_small_disk(
    started: float, disk: SmallDisk, tmp_path: Path, kafka_bootstrap: str, kafka_topic: str
) -> Iterator[OrderSystem]:
    """The four processes, with the event log (and only it) on the small disk."""
    runner = SeparateEventLogRunner(tmp_path / "work", disk.path)
    try:
        yield OrderSystem(runner, kafka_bootstrap, kafka_topic, PROJECTOR_ARGS).start()
    finally:
        runner.stop_all()
        runner.print_tails()


@dataclass(frozen=True)
class ProbeAnswer:
    """One placement a probe client sent, and how it was answered."""

    order_id: str
    status: int
    content_type: str
    body: Any
    retry_after: str | None


class Probe:
    """A client placing fresh orders one at a time and keeping every answer."""

    def __init__(self, command_url: str, headers: dict[str, str]) -> None:
        self.command_url = command_url
        self.session = api_session(headers)
        self.answers: list[ProbeAnswer] = []
        self.lock = threading.Lock()

    def place(self) -> int:
        order_id = f"probe-{uuid.uuid4().hex[:10]}"
        body = {
            "order_id": order_id,
            "customer_id": "c-probe",
            "lines": [{"product_id": "p-probe", "quantity": 1, "unit_price": "1.00"}],
        }
        response = self.session.post(f"{self.command_url}/orders", json=body, timeout=30)
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text
        answer = ProbeAnswer(
            order_id,
            response.status_code,
            response.headers.get("Content-Type", ""),
            parsed,
            response.headers.get("Retry-After"),
        )
        with self.lock:
            self.answers.append(answer)
        return response.status_code

    def acknowledged(self) -> list[Acknowledged]:
        return [Acknowledged(a.order_id, 1, "place") for a in self.answers if a.status == 201]

    def refused(self) -> list[ProbeAnswer]:
        return [a for a in self.answers if a.status != 201]


def test_event_log_disk_full_answers_503_then_resumes(
    system_on_small_disk: OrderSystem, disk: SmallDisk, started: float
) -> None:
    system = system_on_small_disk
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=301, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)
    probe = Probe(system.command_api.base_url, system.admin_headers)

    disk.fill()
    assert disk.free_bytes() == 0
    try:
        wait_until(lambda: probe.place() == 503, 60, "commands still accepted on a full disk")
        refused_from = time.monotonic()
        while time.monotonic() < refused_from + FULL_FOR_S:
            probe.place()
            time.sleep(0.05)
        ready = requests.get(f"{system.command_api.base_url}/readyz", timeout=10).status_code
        # Reads do not need the disk: the strongly consistent GET still answers.
        some_order = probe.acknowledged()[0].stream_id if probe.acknowledged() else None
        if some_order is not None:
            state = probe.session.get(
                f"{system.command_api.base_url}/orders/{some_order}", timeout=10
            )
            assert state.status_code == 200, state.text
    finally:
        disk.empty()
    resumed_after = time.monotonic()
    wait_until(lambda: probe.place() == 201, 60, "commands still refused after space returned")
    resumed_in = time.monotonic() - resumed_after
    load.join()

    # Every refusal was a clean 503 problem+json that recorded nothing.
    refused = probe.refused()
    assert refused, "the probe never saw a refusal"
    wrong = [a for a in refused if not _clean_503(a)]
    assert not wrong, f"{len(wrong)} refusals were not clean 503s, e.g. {wrong[:3]}"
    logged_ids = {e.stream_id for e in system.event_log()}
    recorded = [a.order_id for a in refused if a.order_id in logged_ids]
    assert not recorded, f"refused with 503 but recorded anyway: {recorded[:5]}"
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    assert workload.retries > 0, "the clients should have been refused while the disk was full"

    acknowledged = workload.acknowledged + probe.acknowledged()
    finish_scenario(
        "event log disk full (ENOSPC)",
        system,
        acknowledged,
        workload.retries,
        started,
        f"{len(refused)} probe 503s, /readyz {ready} while full, "
        f"resumed {resumed_in:.1f}s after space returned",
        orders=ORDERS + len(probe.acknowledged()),
    )


def _clean_503(answer: ProbeAnswer) -> bool:
    return (
        answer.status == 503
        and answer.content_type.startswith("application/problem+json")
        and isinstance(answer.body, dict)
        and answer.body.get("type") == UNAVAILABLE
        and answer.retry_after is not None
    )
