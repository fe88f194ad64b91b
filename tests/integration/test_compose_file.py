"""docker-compose.yml is checked without a Docker engine: schema, commands and variables."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
APP_SERVICES = {"command-api", "command-relay", "query-api", "query-projector", "orders-console"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load((REPO / "docker-compose.yml").read_text())
    return loaded


def variables_the_code_reads() -> set[str]:
    names: set[str] = set()
    sources = ("shared/**/*.py", "*_service/**/*.py", "ops/console/**/*.py")
    for path in [path for pattern in sources for path in REPO.glob(pattern)]:
        text = path.read_text()
        names.update(re.findall(r"""env(?:iron)?\.get\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        helper_reads = r"""_(?:int|bool|path)\(\s*env,\s*["']([A-Z][A-Z0-9_]+)["']"""
        names.update(re.findall(helper_reads, text))
    return names


def test_compose_file_matches_the_compose_spec_schema() -> None:
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.compose-spec", str(REPO / "docker-compose.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_app_service_runs_a_console_script_of_the_package(compose: dict[str, Any]) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    services = compose["services"]
    assert set(services) >= APP_SERVICES
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert command[0] in scripts, f"{name} runs {command[0]!r}, not a console script"
        module, _, function = scripts[command[0]].partition(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_every_environment_variable_is_one_the_code_reads(compose: dict[str, Any]) -> None:
    known = variables_the_code_reads()
    assert {"EVENT_STORE_URL", "KAFKA_BOOTSTRAP_SERVERS", "READ_MODEL_URL"} <= known
    for name in APP_SERVICES:
        unknown = set(compose["services"][name]["environment"]) - known
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"


def test_ports_and_health_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["command-api"]["ports"] == ["8001:8001"]
    assert services["query-api"]["ports"] == ["8002:8002"]
    # The broker's host port is unauthenticated PLAINTEXT: loopback only.
    assert services["kafka"]["ports"] == ["127.0.0.1:9092:9092"]
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert "healthcheck" in services["kafka"]
    relay_deps = services["command-relay"]["depends_on"]
    assert relay_deps["kafka"]["condition"] == "service_healthy"
    assert set(compose["volumes"]) >= {"event-log", "read-model"}


def test_services_verify_tokens_in_jwt_mode_with_the_generated_keys(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["auth-keys"]["command"] == ["orders-admin", "keys"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["AUTH_MODE"] == "jwt", name
        assert env["AUTH_ISSUER"] and env["AUTH_PUBLIC_KEY_FILE"] == "/data/auth/jwks.json"
        assert "auth:/data/auth:ro" in services[name]["volumes"], name
        keys = services[name]["depends_on"]["auth-keys"]
        assert keys["condition"] == "service_completed_successfully", name
    projector_token = services["query-projector"]["environment"]["COMMAND_API_TOKEN_FILE"]
    assert projector_token == "/data/auth/query-projector.token"


MONITORING_SERVICES = {"prometheus", "grafana"}


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts (short syntax, ./ paths)."""
    mounts = {}
    for volume in service["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def test_the_monitoring_profile_adds_only_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    services = compose["services"]
    profiled = {name for name, service in services.items() if "profiles" in service}
    assert profiled == MONITORING_SERVICES
    for name in MONITORING_SERVICES:
        service = services[name]
        assert service["profiles"] == ["monitoring"], name
        # An exact version, never a moving tag.
        assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]
        assert service["ports"] and all(p.startswith("127.0.0.1:") for p in service["ports"])
        for target, source in bind_mounts(service).items():
            assert (REPO / source).exists(), f"{name} mounts {source} at {target}: missing"
        # The pack's files and the auth volume are read, never written.
        shared = [v for v in service["volumes"] if v.startswith(("./", "auth:"))]
        assert shared and all(v.endswith(":ro") for v in shared), name


def test_prometheus_is_given_the_pack_and_the_token_auth_keys_writes(
    compose: dict[str, Any],
) -> None:
    from ops.auth_commands import PROMETHEUS_TOKEN_FILE

    prometheus = compose["services"]["prometheus"]
    config_dir = bind_mounts(prometheus)["/etc/prometheus"]
    assert config_dir == "./deploy/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "auth:/data/auth:ro" in prometheus["volumes"]
    keys = prometheus["depends_on"]["auth-keys"]
    assert keys["condition"] == "service_completed_successfully"

    config = YAML(typ="safe").load((REPO / config_dir / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert (REPO / config_dir / "alerts.yml").is_file()
    targets = {}
    for job in config["scrape_configs"]:
        assert job["authorization"]["credentials_file"] == f"/data/auth/{PROMETHEUS_TOKEN_FILE}"
        targets[job["job_name"]] = job["static_configs"][0]["targets"]
    ports = {name: compose["services"][name]["ports"][0].split(":")[-1] for name in targets}
    assert targets == {name: [f"{name}:{port}"] for name, port in ports.items()}
    assert set(targets) == {"command-api", "query-api"}


def test_grafana_is_anonymous_read_only_with_the_provisioned_pack(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    env = grafana["environment"]
    # No admin with a known password, no sign-in at all: anonymous viewers only.
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    assert env["GF_AUTH_BASIC_ENABLED"] == "false"
    assert env["GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION"] == "true"
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env

    mounts = bind_mounts(grafana)
    provisioning = REPO / mounts["/etc/grafana/provisioning"]
    yaml = YAML(typ="safe")
    datasource = yaml.load((provisioning / "datasources" / "prometheus.yml").read_text())
    (source,) = datasource["datasources"]
    assert source["url"] == "http://prometheus:9090"
    (provider,) = yaml.load((provisioning / "dashboards" / "orders.yml").read_text())["providers"]
    dashboards = provider["options"]["path"]
    assert mounts[dashboards] == "./deploy/grafana/dashboards"
    dashboard = json.loads((REPO / mounts[dashboards] / "orders.json").read_text())
    # Every panel queries the provisioned data source by its uid.
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert panels
    assert {p["datasource"]["uid"] for p in panels} == {source["uid"]}
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == f"{dashboards}/orders.json"
