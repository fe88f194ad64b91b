"""Every metric the monitoring pack's alert rules and dashboard query is on a /metrics page.

The real system (command API, relay, query API, projector, Kafka) runs a short workload: a few
orders taken through their lifecycles, accounts opened, a deposit. Then both pages are scraped
with a metrics:read token, as Prometheus scrapes them, and each name the pack's expressions
select (read from deploy/, not listed here) must have samples on one of them: a family that is
only declared would not make an alert or a panel work.

Then a real Prometheus runs the pack's config against the same system, with the token file
`orders-admin keys` writes: both targets are up, every rule evaluates, nothing fires, and a
parked message makes ParkedEvents fire.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shared.contract.principal import METRICS_READ
from tests.integration.query_support import produce_raw
from tests.support.auth import bearer
from tests.support.monitoring_pack import pack_metric_names
from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceRunner, console_script, wait_until
from tests.support.prometheus_server import PrometheusServer, pack_config_for, prometheus_binary
from tests.support.workload import Workload


@pytest.fixture
def system(tmp_path: Path, kafka_bootstrap: str, kafka_topic: str) -> Iterator[OrderSystem]:
    runner = ServiceRunner(tmp_path)
    try:
        yield OrderSystem(runner, kafka_bootstrap, kafka_topic).start()
    finally:
        runner.stop_all()
        runner.print_tails()


def scrape(base_url: str, headers: Mapping[str, str]) -> dict[str, float]:
    """One scrape of /metrics: sample name (with _total, _bucket, ...) -> summed value."""
    response = requests.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[sample.name] = samples.get(sample.name, 0.0) + sample.value
    return samples


def test_every_metric_the_rules_and_dashboard_query_is_exposed(system: OrderSystem) -> None:
    needed = pack_metric_names()
    assert len(needed) >= 20  # the scan found the pack's expressions

    url = system.command_api.base_url
    Workload(lambda: url, orders=6, headers=system.admin_headers).run(threads=2)
    deposit = requests.post(
        f"{url}/accounts/c-00/deposits",
        json={"amount": "25.00"},
        headers=system.admin_headers,
        timeout=10,
    )
    assert deposit.status_code in (200, 201), deposit.text
    system.wait_converged()

    scraper = bearer(system.runner.workdir, sub="prometheus", scopes=(METRICS_READ,))
    pages = (system.command_api.base_url, system.query_api.base_url)

    def missing() -> set[str]:
        return needed - set().union(*(scrape(page, scraper) for page in pages))

    # The relay's lease and the projector's lag are read at scrape time, once both are up.
    wait_until(lambda: not missing(), 30, lambda: f"not exposed: {sorted(missing())}")
    assert missing() == set()
    # Both pages say ready (the alert ServiceNotReady reads this, not /readyz).
    assert [scrape(page, scraper)["service_ready"] for page in pages] == [1, 1]


def write_prometheus_token(runner: ServiceRunner) -> Path:
    """Run `orders-admin keys` on the system's data dir, as docs/monitoring.md says to."""
    argv = [*console_script("orders-admin", "ops.admin"), "keys"]
    done = subprocess.run(argv, env=runner.base_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return runner.workdir / "auth" / "prometheus.token"


def firing(prometheus: PrometheusServer) -> list[str]:
    alerts = prometheus.api("alerts")["alerts"]
    return sorted(a["labels"]["alertname"] for a in alerts if a["state"] == "firing")


def test_prometheus_scrapes_both_apis_with_the_pack_and_its_rules_fire(
    system: OrderSystem,
) -> None:
    binary = prometheus_binary()
    if binary is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    url = system.command_api.base_url
    Workload(lambda: url, orders=3, headers=system.admin_headers).run(threads=1)
    system.wait_converged()
    token_file = write_prometheus_token(system.runner)
    targets = {
        "command-api": f"127.0.0.1:{system.command_api.port}",
        "query-api": f"127.0.0.1:{system.query_api.port}",
    }
    prometheus = PrometheusServer(system.runner, binary, pack_config_for(targets, token_file))

    def targets_health() -> dict[str, str] | None:
        data = prometheus.api("targets")
        if data is None:
            return None
        health = {t["labels"]["job"]: t["health"] for t in data["activeTargets"]}
        return health if set(health.values()) == {"up"} and len(health) == 2 else None

    wait_until(targets_health, 60, lambda: str(prometheus.api("targets")))

    def rules_health() -> list[dict[str, Any]] | None:
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        return rules if rules and all(r["health"] == "ok" for r in rules) else None

    rules = wait_until(rules_health, 30, lambda: str(prometheus.api("rules")))
    assert len(rules) == 8
    ready = prometheus.api("query", query="service_ready")["result"]
    assert {(r["metric"]["job"], r["value"][1]) for r in ready} == {
        ("command-api", "1"),
        ("query-api", "1"),
    }
    assert firing(prometheus) == []

    produce_raw(system.bootstrap, system.topic, [(b"junk-1", b"\xff not an event", [])])
    wait_until(lambda: firing(prometheus) == ["ParkedEvents"], 60, lambda: str(firing(prometheus)))
