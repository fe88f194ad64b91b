"""A relay or a projector frozen (SIGSTOP) past its lease or session while a second one runs,
then resumed: the zombie wakes up with work in hand. The relay's checkpoint is fenced on the
lease and the projector claims each event with a version check, so what the zombie does can
only duplicate messages on the topic, never lose, reorder or count an event twice.

The relay also checks its lease's local validity before every read and every send, so once
resumed it sends nothing: the only copies it can still add are records it had handed to its
producer before the freeze (none in practice: the freeze lands between batches).
"""

from __future__ import annotations

import re
import time

import pytest

from tests.support.fault_report import finish_scenario
from tests.support.faults import (
    SteadyWorkload,
    copies_sent_since,
    frozen,
    kafka_timestamp_boundary,
    lease_holder_pid,
    published_position,
    sqlite_path,
    start_relay,
    wait_for_load,
)
from tests.support.order_system import OrderSystem
from tests.support.processes import wait_until

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
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=401, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 40)
    assert lease_holder_pid(system) == system.relay.pid

    with frozen(system.relay, sqlite_path(system.runner.event_store_url)) as freeze:
        wait_until(lambda: lease_holder_pid(system) == standby.pid, 30, "no takeover")
        taken_at = published_position(system)
        wait_until(lambda: published_position(system) > taken_at, 30, "standby not publishing")
        # Everything up to here is on the topic, sent by the standby before this moment;
        # whatever is stamped after the boundary and at or below it came from the zombie.
        standby_at = published_position(system)
        thawed_at_ms = kafka_timestamp_boundary()
        thawed_at = time.monotonic()
    # Thawed, the old leader sees its lease lapsed before it reads or sends anything.
    system.relay.wait_for_output("lost the relay lease", timeout=30)
    load.join()

    assert lease_holder_pid(system) == standby.pid, "the zombie must not take the lease back"
    during = workload.acknowledged_between(freeze.stopped_at, thawed_at)
    frozen_for = thawed_at - freeze.stopped_at
    assert during > 0, f"no command acknowledged in {frozen_for:.1f} s with the relay frozen"
    assert workload.retries == 0, "a frozen relay must not hold up commands"
    late = copies_sent_since(system, thawed_at_ms, standby_at)
    assert late == [], f"the zombie sent positions {late} after it was resumed"
    finish(
        "relay frozen past its lease",
        system,
        workload,
        started,
        f"standby took over; {during} acks in {frozen_for:.1f} s frozen; zombie sent 0",
    )


def test_projector_frozen_past_its_session_resumes_as_a_zombie(
    system: OrderSystem, started: float
) -> None:
    second = system.start_projector("projector-2")
    workload = SteadyWorkload(
        lambda: system.command_api.base_url, ORDERS, RATE, seed=402, headers=system.admin_headers
    )
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
