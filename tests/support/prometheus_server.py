"""A real Prometheus (Debian's `prometheus` package) for tests, run with the pack's config.

The config is deploy/prometheus/prometheus-local.yml with the test's ports, its token file
and a 1 s scrape and evaluation interval: the pack's jobs, authorization and rules otherwise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import requests
from ruamel.yaml import YAML

from devtools.ports import free_port
from tests.support.monitoring_pack import ALERT_RULES
from tests.support.processes import ServiceProcess, ServiceRunner

LOCAL_CONFIG = ALERT_RULES.parent / "prometheus-local.yml"


def prometheus_binary() -> str | None:
    """The prometheus server on PATH (Debian: apt-get install prometheus), or None."""
    return shutil.which("prometheus")


def pack_config_for(targets: dict[str, str], token_file: Path) -> dict[str, Any]:
    """prometheus-local.yml with job -> host:port targets, this token file, 1 s intervals."""
    config: dict[str, Any] = YAML(typ="safe").load(LOCAL_CONFIG.read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(LOCAL_CONFIG.parent / name) for name in config["rule_files"]]
    for job in config["scrape_configs"]:
        job["authorization"]["credentials_file"] = str(token_file)
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    return config


class PrometheusServer:
    """One Prometheus process on a free loopback port, stopped with the runner's services."""

    def __init__(self, runner: ServiceRunner, binary: str, config: dict[str, Any]) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config_file = runner.workdir / "prometheus.json"  # YAML is a superset of JSON
        config_file.write_text(json.dumps(config, indent=2))
        argv = [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={runner.workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]
        self.process: ServiceProcess = runner.start("prometheus", argv)

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>: its `data`, or None while Prometheus does not answer yet."""
        try:
            response = requests.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=5)
        except requests.ConnectionError:
            return None
        if response.status_code == 503:  # starting: "Service Unavailable", not JSON
            return None
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]
