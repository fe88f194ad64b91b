"""The console's arithmetic: command rate and p99 from two /metrics scrapes, state diffs."""

from __future__ import annotations

from ops.console.metrics_sampler import parse_scrape, rate_between
from ops.console.state_diff import diff, disagreements

SCRAPE = """# TYPE commands_total counter
commands_total{{command="place",outcome="ok",status="201"}} {count}
# TYPE command_duration_seconds histogram
command_duration_seconds_bucket{{command="place",le="0.005"}} {fast}
command_duration_seconds_bucket{{command="place",le="0.05"}} {count}
command_duration_seconds_bucket{{command="place",le="+Inf"}} {count}
command_duration_seconds_count{{command="place"}} {count}
command_duration_seconds_sum{{command="place"}} 1.0
# TYPE relay_lag_events gauge
relay_lag_events{{topic="orders.events"}} 4.0
"""


def test_rate_and_p99_between_two_scrapes() -> None:
    before = parse_scrape(SCRAPE.format(count=100, fast=100), at=10.0)
    after = parse_scrape(SCRAPE.format(count=300, fast=290), at=20.0)
    point = rate_between(before, after)
    assert point.rate == 20.0  # 200 commands in 10 s
    assert point.p99_ms == 50.0  # 10 of the 200 took more than 5 ms: p99 is in the 50 ms bucket
    assert after.gauges["relay_lag_events"] == [({"topic": "orders.events"}, 4.0)]
    idle = rate_between(after, parse_scrape(SCRAPE.format(count=300, fast=290), at=25.0))
    assert (idle.rate, idle.p99_ms) == (0.0, None)


def test_diffs_name_each_changed_field() -> None:
    v1 = {"status": "PLACED", "version": 1, "lines": [{"quantity": 2}]}
    v2 = {"status": "PAID", "version": 2, "lines": [{"quantity": 2}]}
    assert [(c.field, c.before, c.after) for c in diff(v1, v2)] == [
        ("status", "PLACED", "PAID"),
        ("version", 1, 2),
    ]
    assert [c.field for c in disagreements(v2, {"status": "PAID", "version": 1})] == ["version"]
