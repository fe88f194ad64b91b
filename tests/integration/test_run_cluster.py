"""`make run-cluster` (scripts/run_cluster.py) as a user runs it: PostgreSQL, three brokers and
two hosts of each API, every one of them answering, one broker killed and survived, then Ctrl-C
leaving nothing behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from devtools.ports import accepts_connections, free_port
from devtools.waiting import wait_until
from tests.support.run_script import ORDER, Supervisor, own_environment, process_group_alive

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "run_cluster.py"
SERVICES = {
    "command-api-1",
    "command-api-2",
    "command-relay-1",
    "command-relay-2",
    "query-projector-1",
    "query-projector-2",
    "query-projector-3",
    "query-api-1",
    "query-api-2",
    "orders-console",
}
# Three JVMs, PostgreSQL and ten Python services on a loaded 2-core machine start slowly.
SYSTEM_UP_TIMEOUT_S = 280
ADMIN_TOKEN_LINE = "admin token (scope admin, 12 h): "
# Services, then three brokers (each up to 30 s before SIGKILL), then PostgreSQL.
EXIT_TIMEOUT_S = 120


def _ports(count: int) -> str:
    return ",".join(str(free_port()) for _ in range(count))


@pytest.fixture
def cluster_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """run_cluster.py's environment: free ports everywhere, its folders in temp dirs."""
    # As root, PostgreSQL runs as the postgres user, who cannot enter pytest's private tmp_path.
    pg_parent = Path(tempfile.mkdtemp(prefix="run-cluster-pg-"))
    pg_parent.chmod(0o711)
    env = own_environment(os.environ)
    env.update(
        DATA_DIR=str(tmp_path / "data"),
        POSTGRES_PORT=str(free_port()),
        POSTGRES_DATA_DIR=str(pg_parent / "postgres"),
        KAFKA_CLUSTER_DATA_DIR=str(tmp_path / "kafka-cluster"),
        KAFKA_CLUSTER_PORTS=_ports(3),
        KAFKA_CLUSTER_CONTROLLER_PORTS=_ports(3),
        COMMAND_API_PORTS=_ports(2),
        QUERY_API_PORTS=_ports(2),
        CONSOLE_PORT=str(free_port()),
        LOG_LEVEL="INFO",
    )
    try:
        yield env
    finally:
        shutil.rmtree(pg_parent, ignore_errors=True)


@pytest.fixture
def supervisor(cluster_env: dict[str, str]) -> Iterator[Supervisor]:
    """run_cluster.py started; teardown kills what is left (brokers, PostgreSQL too)."""
    started = Supervisor(cluster_env, SCRIPT)
    try:
        yield started
    finally:
        started.kill_everything()
        for broker in _broker_pids(cluster_env).values():
            _kill(broker)
        if (postmaster := _postgres_pid(cluster_env)) is not None:
            _kill(postmaster)
        print(f"\n===== run_cluster.py output (exit {started.process.returncode}) =====")
        print(started.output())


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)


def _broker_pids(env: dict[str, str]) -> dict[str, int]:
    pids = {}
    for pid_file in Path(env["KAFKA_CLUSTER_DATA_DIR"]).glob("node-*/broker.pid"):
        text = pid_file.read_text().strip()
        if text.isdigit():
            pids[f"kafka {pid_file.parent.name}"] = int(text)
    return pids


def _postgres_pid(env: dict[str, str]) -> int | None:
    pid_file = Path(env["POSTGRES_DATA_DIR"]) / "data" / "postmaster.pid"
    try:
        first = pid_file.read_text().splitlines()[0].strip()
    except (OSError, IndexError):
        return None
    return int(first) if first.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes; /proc tells the two apart.
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "State:\tZ" not in status.read_text()


def _read_back(
    query_url: str, order_id: str, version: int, headers: dict[str, str], supervisor: Supervisor
) -> requests.Response:
    """The order as this query API serves it once it has projected `version`."""

    def projected() -> requests.Response | None:
        # The query API itself waits a while for min_version; 404 means not projected yet.
        response = requests.get(
            f"{query_url}/orders/{order_id}",
            params={"min_version": version},
            headers=headers,
            timeout=10,
        )
        return response if response.status_code == 200 else None

    return wait_until(projected, 60, lambda: f"not projected:\n{supervisor.output()}")


def _urls(env: dict[str, str], var: str) -> list[str]:
    return [f"http://127.0.0.1:{port}" for port in env[var].split(",")]


def test_every_instance_answers_a_broker_kill_is_survived_and_ctrl_c_stops_all(
    supervisor: Supervisor, cluster_env: dict[str, str]
) -> None:
    up = supervisor.wait_for_line("system up", SYSTEM_UP_TIMEOUT_S)
    assert "relay lease: command-relay-" in up, up
    pids = supervisor.child_pids()
    assert set(pids) == SERVICES, supervisor.output()
    brokers = _broker_pids(cluster_env)
    assert len(brokers) == 3, brokers
    postgres = _postgres_pid(cluster_env)
    assert postgres is not None and _alive(postgres)
    token_path = Path(supervisor.wait_for_line(ADMIN_TOKEN_LINE, 1).removeprefix(ADMIN_TOKEN_LINE))
    admin = {"Authorization": f"Bearer {token_path.read_text().strip()}"}

    placed = []
    for command_url in _urls(cluster_env, "COMMAND_API_PORTS"):
        response = requests.post(f"{command_url}/orders", json=ORDER, headers=admin, timeout=10)
        assert response.status_code == 201, response.text
        placed.append((response.json()["order_id"], response.json()["version"]))

    for query_url in _urls(cluster_env, "QUERY_API_PORTS"):
        for order_id, version in placed:
            read = _read_back(query_url, order_id, version, admin, supervisor)
            assert read.json()["version"] >= version
            assert read.json()["customer_id"] == "c-1"
            assert read.json()["total_cents"] == 1998

    # The cluster is built to lose a broker: the run reports it and goes on serving.
    os.kill(brokers["kafka node-1"], signal.SIGKILL)
    supervisor.wait_for_line("warning: Kafka broker 1 exited", 30)
    command_url = _urls(cluster_env, "COMMAND_API_PORTS")[1]
    response = requests.post(f"{command_url}/orders", json=ORDER, headers=admin, timeout=10)
    assert response.status_code == 201, response.text
    after_kill = (response.json()["order_id"], response.json()["version"])
    query_url = _urls(cluster_env, "QUERY_API_PORTS")[0]
    assert _read_back(query_url, *after_kill, admin, supervisor).json()["total_cents"] == 1998
    assert supervisor.process.is_running

    os.kill(supervisor.process.pid, signal.SIGINT)
    assert supervisor.wait_exit(EXIT_TIMEOUT_S) == 0, supervisor.output()
    wait_until(
        lambda: not any(process_group_alive(pid) for pid in pids.values()),
        10,
        lambda: f"left running: {[n for n, p in pids.items() if process_group_alive(p)]}",
    )
    everything_else = {**brokers, "postgres": postgres}
    left = [name for name, pid in everything_else.items() if _alive(pid)]
    assert not left, f"left running: {left}\n{supervisor.output()}"
    for var in ("COMMAND_API_PORTS", "QUERY_API_PORTS", "KAFKA_CLUSTER_PORTS", "POSTGRES_PORT"):
        for port in cluster_env[var].split(","):
            assert not accepts_connections(int(port)), f"{var} {port} still answers"
