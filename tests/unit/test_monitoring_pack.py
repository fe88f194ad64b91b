"""The scan that finds the metric names in the monitoring pack's PromQL."""

from __future__ import annotations

import pytest

from tests.support.monitoring_pack import (
    dashboard_expressions,
    metric_names,
    pack_metric_names,
    rule_expressions,
)


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("relay_lag_events > 1000", {"relay_lag_events"}),
        (
            'sum by (job) (rate(http_requests_total{status=~"5..", endpoint!~"readyz"}[5m]))'
            " / sum by (job) (rate(http_requests_total[5m])) > 0.05",
            {"http_requests_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le, job) (rate(x_seconds_bucket[$__rate_interval])))",
            {"x_seconds_bucket"},
        ),
        (
            "sum(increase(a_total[15m])) by (topic) >= 3"
            " or count without (owner) (count_over_time(b_seconds[15m])) >= 3",
            {"a_total", "b_seconds"},
        ),
        ("a / on (job) group_left (owner) b offset 5m", {"a", "b"}),
        ('up{job=~"command-api|query-api"} == 0 and bool 1e3', {"up"}),
        ('label_replace(m, "dst", "$1", \'src\', "(.*)")', {"m"}),
        ("max_over_time(m[10m:1m]) - time()", {"m"}),
    ],
)
def test_metric_names_are_what_an_expression_selects(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_the_pack_has_expressions_in_its_rules_and_its_dashboard() -> None:
    rules, panels = rule_expressions(), dashboard_expressions()
    assert len(rules) == 8
    assert len(panels) >= 20
    names = pack_metric_names()
    assert {"relay_lag_events", "service_ready", "relay_lease_acquisitions_total"} <= names
    assert "up" not in names  # Prometheus' own, not on a /metrics page
