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
    profiled = {
        name for name, service in services.items() if "monitoring" in service.get("profiles", [])
    }
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


# The profile "cluster": the scale-out shape of `make run-cluster` (docs/scaling.md).
CLUSTER_KAFKA = ("cluster-kafka-1", "cluster-kafka-2", "cluster-kafka-3")
CLUSTER_APP_SERVICES = {
    "cluster-command-api-1",
    "cluster-command-api-2",
    "cluster-command-relay-1",
    "cluster-command-relay-2",
    "cluster-query-projector",
    "cluster-query-api-1",
    "cluster-query-api-2",
    "cluster-orders-console",
}


def _in_profile(service: dict[str, Any], profile: str) -> bool:
    return profile in service.get("profiles", [])


def test_the_cluster_profile_is_postgres_three_brokers_and_two_hosts_of_each_side(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    cluster = {name for name, service in services.items() if _in_profile(service, "cluster")}
    assert cluster == {"cluster-postgres", *CLUSTER_KAFKA, *CLUSTER_APP_SERVICES}
    # A plain `docker compose up` still starts the single-node shape, and only that.
    for name in {"auth-keys", "kafka", *APP_SERVICES}:
        assert "profiles" not in services[name], name
    assert "healthcheck" in services["cluster-postgres"]
    assert services["cluster-query-projector"]["deploy"]["replicas"] == 3


def test_the_cluster_brokers_form_one_kraft_quorum_with_rf_3_and_min_isr_2(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    brokers = [services[name] for name in CLUSTER_KAFKA]
    envs = [broker["environment"] for broker in brokers]
    assert {broker["image"] for broker in brokers} == {services["kafka"]["image"]}
    assert [env["KAFKA_NODE_ID"] for env in envs] == ["1", "2", "3"]
    assert len({env["CLUSTER_ID"] for env in envs}) == 1
    voters = "1@cluster-kafka-1:9093,2@cluster-kafka-2:9093,3@cluster-kafka-3:9093"
    assert {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs} == {voters}
    assert {env["KAFKA_PROCESS_ROLES"] for env in envs} == {"broker,controller"}
    for name, env in zip(CLUSTER_KAFKA, envs, strict=True):
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert f"INTERNAL://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert len({broker["volumes"][0] for broker in brokers}) == 3
    assert all("healthcheck" in broker for broker in brokers)


def test_the_cluster_services_share_one_event_log_and_all_three_brokers(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    known = variables_the_code_reads()
    event_logs = set()
    for name in CLUSTER_APP_SERVICES:
        service = services[name]
        assert service["command"][0] in scripts, name
        env = service["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"
        assert sorted(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == [
            f"{broker}:19092" for broker in CLUSTER_KAFKA
        ], name
        assert env["KAFKA_TOPIC_PARTITIONS"] == "6"
        assert env["KAFKA_REPLICATION_FACTOR"] == "3"
        assert env["AUTH_MODE"] == "jwt", name
        assert "auth:/data/auth:ro" in service["volumes"], name
        event_logs.add(env["EVENT_STORE_URL"])
    assert len(event_logs) == 1
    assert event_logs.pop().startswith("postgresql+psycopg://")
    for name in ("cluster-command-api-1", "cluster-command-relay-1"):
        depends = services[name]["depends_on"]
        assert depends["cluster-postgres"]["condition"] == "service_healthy"
        assert all(depends[broker]["condition"] == "service_healthy" for broker in CLUSTER_KAFKA)


def test_no_two_services_publish_one_host_port_and_the_cluster_binds_loopback(
    compose: dict[str, Any],
) -> None:
    published: dict[str, str] = {}
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_side = port.rsplit(":", 1)[0]
            assert host_side not in published, f"{name} and {published[host_side]}: {port}"
            published[host_side] = name
            if _in_profile(service, "cluster"):
                assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
