"""`make run`: the whole system on one machine, without Docker.

Starts a local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS points at one), then the command
API, the relay, the query API, the projector and the operator console, each as its own process
with its output prefixed by its name. "system up" is printed only once both APIs and the
console answer GET /healthz. Ctrl-C
(or SIGTERM) stops them all cleanly, broker last. If any process dies, or the APIs are not
healthy within HEALTH_TIMEOUT_S, the others are stopped too and the exit code is 1, so a broken
system never looks half-alive.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # Run as a file (`python scripts/run_system.py`): devtools is not an installed package.
    sys.path.insert(0, str(REPO))

from devtools.local_kafka import LocalKafka, LocalKafkaError  # noqa: E402
from devtools.ports import accepts_connections  # noqa: E402
from devtools.processes import ServiceGroup, ServiceProcess, console_script  # noqa: E402
from devtools.terminal import PrefixedOutput  # noqa: E402
from devtools.waiting import http_ok  # noqa: E402
from shared.infra.auth_setup import mint_local_token  # noqa: E402
from shared.infra.config import Settings  # noqa: E402
from shared.infra.dev_keys import ADMIN_TOKEN_FILE, auth_dir, write_token_file  # noqa: E402

PROCESSES = ("command-api", "command-relay", "query-api", "query-projector", "orders-console")
HEALTH_TIMEOUT_S = 60.0
ADMIN_TOKEN_TTL_S = 12 * 3600
STOP_TIMEOUT_S = 20.0

# The services' output and our own lines share stdout; whole lines only, never interleaved.
_console = PrefixedOutput()
_say = _console.say


def api_url(env: Mapping[str, str], host_var: str, port_var: str, default_port: int) -> str:
    """The base URL at which this machine reaches the API configured by host_var/port_var."""
    host = env.get(host_var) or "127.0.0.1"
    if host == "0.0.0.0":  # bound to every interface, so loopback reaches it too
        host = "127.0.0.1"
    return f"http://{host}:{env.get(port_var) or default_port}"


def service_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment every service gets: environ plus what the services must agree on."""
    env = dict(environ)
    env.setdefault("PYTHONUNBUFFERED", "1")
    # Local keys, verified by the same code as an identity provider's (docs/security.md).
    env.setdefault("AUTH_MODE", "dev")
    if not env.get("COMMAND_API_URL"):
        # The projector repairs gaps through the command API; its default URL assumes port 8001.
        env["COMMAND_API_URL"] = api_url(env, "COMMAND_API_HOST", "COMMAND_API_PORT", 8001)
    if not env.get("QUERY_API_URL"):
        # The console reads the query API over HTTP, as it reads the command API.
        env["QUERY_API_URL"] = api_url(env, "QUERY_API_HOST", "QUERY_API_PORT", 8002)
    return env


def write_admin_token(env: Mapping[str, str]) -> Path:
    """Mint $DATA_DIR/auth/admin.token with the dev key (made on first use); return its path."""
    settings = Settings.from_env(env)
    token = mint_local_token(settings, sub="local-admin", scopes=["admin"], ttl_s=ADMIN_TOKEN_TTL_S)
    path = auth_dir(settings.data_dir) / ADMIN_TOKEN_FILE
    write_token_file(path, token)
    return path


def _answers(url: str) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urllib.parse.urlsplit(url)
    return accepts_connections(parts.port or 80, parts.hostname or "127.0.0.1")


def _start(name: str, env: dict[str, str]) -> ServiceProcess:
    """Start one service in its own session (so a terminal's Ctrl-C reaches only us)."""
    service = ServiceProcess(name, console_script(name), env, on_line=_console.printer(name))
    service.start()
    _say(f"started {name} (pid {service.pid})")
    return service


def main() -> int:
    """Run everything until interrupted; exit 1 if a process died or the APIs never got healthy."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    env = service_env(os.environ)
    command_url = api_url(env, "COMMAND_API_HOST", "COMMAND_API_PORT", 8001)
    query_url = api_url(env, "QUERY_API_HOST", "QUERY_API_PORT", 8002)
    console_url = api_url(env, "CONSOLE_HOST", "CONSOLE_PORT", 8003)
    for url in (command_url, query_url, console_url):
        # Otherwise a leftover from an earlier run would pass our health check in its place.
        if _answers(url):
            _say(f"error: something already answers on {url}; stop it or choose another port")
            return 1

    kafka = None
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        port = int(env.get("KAFKA_PORT", "9092"))
        data_dir = Path(env.get("KAFKA_DATA_DIR", REPO / ".data" / "kafka"))
        kafka = LocalKafka(port=port, data_dir=data_dir)
        _say(f"starting local Kafka on 127.0.0.1:{port} (log: {data_dir}/broker.log)")
        try:
            kafka.start()
        except LocalKafkaError as exc:
            _say(f"error: {exc}")
            return 1
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers

    if env["AUTH_MODE"] == "dev":
        _say(f"admin token (scope admin, 12 h): {write_admin_token(env)}")

    services = ServiceGroup(stop_timeout=STOP_TIMEOUT_S, report=_say)
    exit_code = 0
    try:
        for name in PROCESSES:
            if stopping.is_set():
                break
            services.add(_start(name, env))
        exit_code = _supervise(services.services, (command_url, query_url, console_url), stopping)
    finally:
        _say("stopping the system")
        # All at once is safe: each service finishes its current unit of work and resumes from
        # its stored position (relay: the event log; projector: the read model) on next start.
        if not services.stop_all(together=True):
            exit_code = 1
        for service in services.services:
            service.join_output()  # so the services' last lines come before ours
        if kafka is not None:
            _say("stopping local Kafka")
            kafka.stop()
    _say(f"system stopped (exit code {exit_code})")
    return exit_code


def _supervise(
    services: list[ServiceProcess], api_urls: tuple[str, str, str], stopping: threading.Event
) -> int:
    """Announce "system up" once the APIs are healthy, then watch until a stop or a death."""
    health_deadline = time.monotonic() + HEALTH_TIMEOUT_S
    healthy = False
    while not stopping.is_set():
        for service in services:
            if not service.is_running:
                _say(f"error: {service.name} exited with code {service.returncode}")
                return 1
        if not healthy:
            healthy = all(http_ok(f"{url}/healthz", timeout=2.0) for url in api_urls)
            if healthy:
                command_url, query_url, console_url = api_urls
                _say(
                    f"system up: command API {command_url}  query API {query_url}  "
                    f"console {console_url} (sign in with the admin token; "
                    "Ctrl-C stops everything)"
                )
            elif time.monotonic() >= health_deadline:
                _say(
                    f"error: the APIs did not answer GET /healthz within {HEALTH_TIMEOUT_S:g}s "
                    f"({' and '.join(api_urls)})"
                )
                return 1
        stopping.wait(0.5 if healthy else 0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
