"""Many clients writing to the same orders at once, with and without an expected version
(If-Match / expected_version), while others deposit into the same accounts: the log has
versions 1..n per stream with no duplicate, every 200 is in the log at the version it states,
and every 409 is a real conflict according to the log.
"""

from __future__ import annotations

import pytest

from tests.support.contention import HotOrders, judge_conflicts
from tests.support.fault_report import finish_scenario
from tests.support.order_system import OrderSystem

pytestmark = pytest.mark.kafka


def test_sixteen_clients_on_ten_orders_every_409_is_a_real_conflict(
    system: OrderSystem, started: float
) -> None:
    hot = HotOrders(
        system.command_api.base_url,
        system.admin_headers,
        clients=16,
        rounds=12,
        orders_per_round=10,
    )

    hot.run()

    log = system.event_log()
    judgement = judge_conflicts(hot.attempts, log)
    print(f"\nanswers: {judgement.summary()}")
    assert not judgement.unreal, (
        f"{len(judgement.unreal)} answers the log contradicts:\n" + "\n".join(judgement.unreal[:10])
    )
    counts = judgement.counts
    # The scenario only proves something if the clients really collided.
    assert counts["409 version-conflict (with expected version)"] > 0, judgement.summary()
    assert (
        counts["409 invalid-transition"] + counts["409 invalid-transition (with expected version)"]
        > 0
    ), judgement.summary()
    finish_scenario(
        "16 clients on the same 10 orders",
        system,
        hot.acknowledged,
        0,
        started,
        f"{len(hot.attempts)} commands: {judgement.summary()}",
        orders=hot.rounds * hot.orders_per_round,
    )
