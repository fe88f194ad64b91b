"""Two command hosts writing the same orders and accounts at once: clients send each request to
the next host in turn, so one client's read and its write, and every client's writes to one
order, land on different hosts of the one PostgreSQL log. Versions stay 1..n per stream with no
duplicate, every 409 is a real conflict according to the log, and money is conserved (the read
model's accounts match the log's fold, nothing counted twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from tests.support.cluster_system import ClusterOrderSystem
from tests.support.contention import HotOrders, judge_conflicts
from tests.support.fault_report import finish_scenario

pytestmark = pytest.mark.cluster


class HotOrdersOnEveryHost(HotOrders):
    """HotOrders whose every request goes to the next command host in turn."""

    def __init__(self, next_url: Callable[[], str], headers: Mapping[str, str], **kw: int) -> None:
        self._next_url = next_url
        super().__init__("", headers, **kw)

    @property
    def command_url(self) -> str:
        return self._next_url()

    @command_url.setter
    def command_url(self, value: str) -> None:
        """The base class sets one URL; this class has a host per request instead."""


def test_two_hosts_on_the_same_orders_every_409_is_a_real_conflict(
    cluster_system: ClusterOrderSystem, started: float
) -> None:
    system = cluster_system
    hot = HotOrdersOnEveryHost(
        system.command_urls(), system.admin_headers, clients=12, rounds=8, orders_per_round=8
    )

    hot.run()

    log = system.event_log()
    versions = [(event.stream_id, event.version) for event in log]
    assert len(versions) == len(set(versions)), "a stream version appears twice in the log"
    judgement = judge_conflicts(hot.attempts, log)
    assert not judgement.unreal, (
        f"{len(judgement.unreal)} answers the log contradicts:\n" + "\n".join(judgement.unreal[:10])
    )
    counts = judgement.counts
    # The scenario only proves something if the clients really collided across the hosts.
    assert counts["409 version-conflict (with expected version)"] > 0, judgement.summary()
    finish_scenario(
        "cluster: 2 hosts, same orders",
        system,
        hot.acknowledged,
        0,
        started,
        f"{len(hot.attempts)} commands: {judgement.summary()}",
        orders=hot.rounds * hot.orders_per_round,
    )
