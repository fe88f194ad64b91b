"""A relay or a projector frozen (SIGSTOP) past its lease or session while a second one runs,
then resumed: the zombie wakes up with work in hand. The relay's checkpoint is fenced on the
lease and the projector claims each event with a version check, so what the zombie does can
only duplicate messages on the topic, never lose, reorder or count an event twice.
"""

from __future__ import annotations

import re

import pytest

from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    SteadyWorkload,
    frozen,
    lease_holder_pid,
    published_position,
    sqlite_path,
    start_relay,
    wait_for_load,
)
from tests.support.processes import wait_until
from tests.support.system import OrderSystem

pytestmark = pytest.mark.kafka

CLIENTS = 8
ORDERS = 150
RATE = 15.0


def finish(
    name: str, system: OrderSystem, workload: SteadyWorkload, started: float, notes: str
) -> None:
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    acknowledged, retries = workload.acknowledged, workload.retries
    finish_scenario(name, system, acknowledged, retries, started, notes, orders=ORDERS)


def test_relay_frozen_past_its_lease_resumes_as_a_fenced_zombie(
    system: OrderSystem, started: float
) -> None:
    standby = start_relay(system, "relay-2")
    standby.wait_for_output("waiting for the relay lease", timeout=30)
    workload = SteadyWorkload(lambda: system.command_api.base_url, ORDERS, RATE, seed=401)
    load = workload.start(CLIENTS)
    wait_for_load(workload, 40)
    assert lease_holder_pid(system) == system.relay.pid

    with frozen(system.relay, sqlite_path(system.runner.event_store_url)):
        wait_until(lambda: lease_holder_pid(system) == standby.pid, 30, "no takeover")
        taken_at = published_position(system)
        wait_until(lambda: published_position(system) > taken_at, 30, "standby not publishing")
    # Thawed, the old leader finds its lease gone the moment it renews or checkpoints.
    system.relay.wait_for_output("lost the relay lease", timeout=30)
    load.join()

    assert lease_holder_pid(system) == standby.pid, "the zombie must not take the lease back"
    finish("relay frozen past its lease", system, workload, started, "standby took over")


def test_projector_frozen_past_its_session_resumes_as_a_zombie(
    system: OrderSystem, started: float
) -> None:
    second = system.start_projector("projector-2")
    workload = SteadyWorkload(lambda: system.command_api.base_url, ORDERS, RATE, seed=402)
    load = workload.start(CLIENTS)
    for projector in (system.projector, second):
        projector.wait_for_output("positioned partitions from the read model", timeout=60)
    wait_for_load(workload, 40)

    mark = second.output_size()
    with frozen(system.projector, sqlite_path(system.read_model_url)):
        # The group drops the frozen member; projector-2 takes all partitions and goes on.
        second.wait_for_output("positioned partitions from the read model", 60, after=mark)
        wait_for_load(workload, 100)
    load.join()
    system.wait_converged()
    # Stopped gracefully, each logs its totals: duplicates are events it saw and skipped.
    system.projector.stop()
    second.stop()
    skipped = sum(_duplicates(p.output()) for p in (system.projector, second))
    system.restart(system.projector)
    finish(
        "projector frozen past its session",
        system,
        workload,
        started,
        f"{skipped} duplicates skipped",
    )


def _duplicates(output: str) -> int:
    found = re.findall(r'"msg": "projector stopped", "stats": \{[^}]*"duplicates": (\d+)', output)
    return int(found[-1]) if found else 0
