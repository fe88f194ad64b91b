"""`make run` (scripts/run_system.py) as a user runs it: a real supervisor, services and broker."""

from __future__ import annotations

import os
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from devtools.ports import accepts_connections, free_port
from devtools.waiting import wait_until
from scripts.launch import service_env
from tests.support.run_script import ORDER, Supervisor, own_environment, process_group_alive

pytestmark = pytest.mark.kafka

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "run_system.py"
SERVICES = ("command-api", "command-relay", "query-api", "query-projector", "orders-console")
# Generous: under a loaded CI machine four Python services and gunicorn workers start slowly.
SYSTEM_UP_TIMEOUT_S = 90
ADMIN_TOKEN_LINE = "admin token (scope admin, 12 h): "
EXIT_TIMEOUT_S = 30


@pytest.fixture
def system_env(kafka_bootstrap: str, kafka_topic: str, tmp_path: Path) -> dict[str, str]:
    """An environment for run_system.py: the suite's broker, a fresh topic, free ports."""
    env = own_environment(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        KAFKA_TOPIC=kafka_topic,
        KAFKA_GROUP_ID=f"run-system-{uuid.uuid4().hex[:12]}",
        DATA_DIR=str(tmp_path),
        COMMAND_API_PORT=str(free_port()),
        QUERY_API_PORT=str(free_port()),
        CONSOLE_PORT=str(free_port()),
        LOG_LEVEL="INFO",
    )
    return env


@pytest.fixture
def start_system(system_env: dict[str, str]) -> Iterator[Callable[[], Supervisor]]:
    """Start the supervisor on system_env with it; teardown kills what is left, prints output."""
    started: list[Supervisor] = []

    def start() -> Supervisor:
        supervisor = Supervisor(system_env, SCRIPT)
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.kill_everything()
        # Captured output is only shown for failing tests, which is when it matters.
        print(f"\n===== run_system.py output (exit {supervisor.process.returncode}) =====")
        print(supervisor.output())


def _api_url(env: dict[str, str], port_var: str) -> str:
    return f"http://127.0.0.1:{env[port_var]}"


def _assert_nothing_left(supervisor: Supervisor, pids: dict[str, int], env: dict[str, str]) -> None:
    """No process of any service's group (gunicorn workers included) runs, no API port answers."""
    wait_until(
        lambda: not any(process_group_alive(pid) for pid in pids.values()),
        10,
        lambda: (
            f"left running: {[n for n, p in pids.items() if process_group_alive(p)]}\n"
            + supervisor.output()
        ),
    )
    for port_var in ("COMMAND_API_PORT", "QUERY_API_PORT", "CONSOLE_PORT"):
        assert not accepts_connections(int(env[port_var])), f"{port_var} still answers"


def test_runs_an_order_through_both_sides_and_stops_cleanly_on_ctrl_c(
    start_system: Callable[[], Supervisor], system_env: dict[str, str]
) -> None:
    supervisor = start_system()
    supervisor.wait_for_line("system up", SYSTEM_UP_TIMEOUT_S)
    pids = supervisor.child_pids()
    assert set(pids) == set(SERVICES), supervisor.output()
    # The run says where the admin token it minted is; its services require a token.
    token_line = supervisor.wait_for_line(ADMIN_TOKEN_LINE, 1)
    token_path = Path(token_line.removeprefix(ADMIN_TOKEN_LINE))
    assert token_path == Path(system_env["DATA_DIR"]) / "auth" / "admin.token"
    admin = {"Authorization": f"Bearer {token_path.read_text().strip()}"}
    command_url = _api_url(system_env, "COMMAND_API_PORT")
    refused = requests.post(f"{command_url}/orders", json=ORDER, timeout=10)
    assert refused.status_code == 401, refused.text

    placed = requests.post(f"{command_url}/orders", json=ORDER, headers=admin, timeout=10)
    assert placed.status_code == 201, placed.text
    order_id, version = placed.json()["order_id"], placed.json()["version"]
    assert version >= 1

    def projected() -> requests.Response | None:
        # The query API itself waits a while for min_version; 404 means not projected yet.
        response = requests.get(
            f"{_api_url(system_env, 'QUERY_API_PORT')}/orders/{order_id}",
            params={"min_version": version},
            headers=admin,
            timeout=10,
        )
        return response if response.status_code == 200 else None

    read = wait_until(projected, 60, lambda: f"order never projected:\n{supervisor.output()}")
    assert read.headers["X-Projection-Up-To-Date"] == "true"
    assert read.json()["version"] >= version
    assert read.json()["customer_id"] == "c-1"
    assert read.json()["total_cents"] == 1998

    os.kill(supervisor.process.pid, signal.SIGINT)
    assert supervisor.wait_exit(EXIT_TIMEOUT_S) == 0, supervisor.output()
    _assert_nothing_left(supervisor, pids, system_env)


# The command API case also checks that a gunicorn master's orphaned workers are cleaned up.
@pytest.mark.parametrize("victim", ["command-relay", "command-api"])
def test_a_dying_service_stops_the_others_and_fails_the_run(
    start_system: Callable[[], Supervisor], system_env: dict[str, str], victim: str
) -> None:
    supervisor = start_system()
    supervisor.wait_for_line("system up", SYSTEM_UP_TIMEOUT_S)
    pids = supervisor.child_pids()
    assert set(pids) == set(SERVICES), supervisor.output()

    os.kill(pids[victim], signal.SIGKILL)

    assert supervisor.wait_exit(EXIT_TIMEOUT_S) == 1, supervisor.output()
    assert f"{victim} exited with code -9" in supervisor.output()
    _assert_nothing_left(supervisor, pids, system_env)


def test_refuses_to_start_when_an_api_port_already_answers(
    start_system: Callable[[], Supervisor], system_env: dict[str, str]
) -> None:
    with socket.create_server(("127.0.0.1", int(system_env["QUERY_API_PORT"]))):
        supervisor = start_system()
        code = supervisor.wait_exit(EXIT_TIMEOUT_S)

    assert code == 1, supervisor.output()
    assert "already answers" in supervisor.output()
    assert supervisor.child_pids() == {}


def test_the_projector_reaches_the_command_api_on_its_configured_port() -> None:
    assert service_env({"COMMAND_API_PORT": "9101"})["COMMAND_API_URL"] == ("http://127.0.0.1:9101")
    assert service_env({})["COMMAND_API_URL"] == "http://127.0.0.1:8001"
    # The services run on local dev keys unless told to verify an identity provider's tokens.
    assert service_env({})["AUTH_MODE"] == "dev"
    assert service_env({"AUTH_MODE": "jwt"})["AUTH_MODE"] == "jwt"
    given = {"COMMAND_API_PORT": "9101", "COMMAND_API_URL": "http://orders.internal:80"}
    assert service_env(given)["COMMAND_API_URL"] == "http://orders.internal:80"
