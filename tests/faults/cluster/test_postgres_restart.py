"""PostgreSQL restarted under load (`pg_ctl restart -m fast`): every session of both command
hosts, both relays and the projectors is cut. Commands fail cleanly meanwhile (503, which the
clients retry; never a 500), then resume on their own, and nothing is lost or counted twice.
"""

from __future__ import annotations

import functools
import time

import pytest

from devtools.local_postgres import LocalPostgres
from devtools.waiting import http_ok
from tests.support.cluster_system import ClusterOrderSystem
from tests.support.fault_report import finish_scenario
from tests.support.faults import SteadyWorkload, wait_for_load
from tests.support.processes import wait_until

pytestmark = pytest.mark.cluster

CLIENTS = 6
ORDERS = 180
RATE = 12.0  # about 15 s of load


def test_postgres_restarted_under_load(
    cluster_system: ClusterOrderSystem, cluster_postgres: LocalPostgres, started: float
) -> None:
    system = cluster_system
    workload = SteadyWorkload(
        system.command_urls(), ORDERS, RATE, seed=1503, headers=system.admin_headers
    )
    load = workload.start(CLIENTS)
    wait_for_load(workload, 30)

    began = time.monotonic()
    cluster_postgres.restart()
    restarted_in = time.monotonic() - began
    # Both hosts take writes again by themselves (their pools reconnect).
    for api in system.command_apis:
        wait_until(functools.partial(http_ok, f"{api.base_url}/readyz"), 30, f"{api.name} down")
    wait_for_load(workload, 120)  # commands are acknowledged again after the restart
    load.join()

    # A 500 (or anything but 2xx, 409 after an outage, 502-504) fails the client: "unexpected".
    assert not workload.unexpected, "\n".join(workload.unexpected[:10])
    for service in [*system.command_apis, *system.relays, system.query_api, *system.projectors]:
        assert service.is_running, f"{service.name} died with PostgreSQL's restart"
    # The APIs' problem handler logs each 503 it gave for an unavailable event store.
    refused = sum(api.output().count("event store unavailable") for api in system.command_apis)
    finish_scenario(
        "cluster: PostgreSQL restart -m fast",
        system,
        workload.acknowledged,
        workload.retries,
        started,
        f"pg_ctl restart took {restarted_in:.1f}s; {refused} commands answered 503 meanwhile",
        orders=ORDERS,
    )
