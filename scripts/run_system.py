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
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # Run as a file (`python scripts/run_system.py`): devtools is not an installed package.
    sys.path.insert(0, str(REPO))

from devtools.local_kafka import LocalKafka, LocalKafkaError  # noqa: E402
from devtools.processes import ServiceGroup  # noqa: E402
from devtools.waiting import http_ok  # noqa: E402
from scripts.launch import (  # noqa: E402
    STOP_TIMEOUT_S,
    api_url,
    first_exited,
    first_taken,
    say,
    service_env,
    start_service,
    stop_requested,
    stop_services,
    write_admin_token,
)

PROCESSES = ("command-api", "command-relay", "query-api", "query-projector", "orders-console")
HEALTH_TIMEOUT_S = 60.0


def main() -> int:
    """Run everything until interrupted; exit 1 if a process died or the APIs never got healthy."""
    stopping = stop_requested()
    env = service_env(os.environ)
    command_url = api_url(env, "COMMAND_API_HOST", "COMMAND_API_PORT", 8001)
    query_url = api_url(env, "QUERY_API_HOST", "QUERY_API_PORT", 8002)
    console_url = api_url(env, "CONSOLE_HOST", "CONSOLE_PORT", 8003)
    taken = first_taken((command_url, query_url, console_url))
    if taken is not None:
        say(f"error: something already answers on {taken}; stop it or choose another port")
        return 1

    kafka = None
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        port = int(env.get("KAFKA_PORT", "9092"))
        data_dir = Path(env.get("KAFKA_DATA_DIR", REPO / ".data" / "kafka"))
        kafka = LocalKafka(port=port, data_dir=data_dir)
        say(f"starting local Kafka on 127.0.0.1:{port} (log: {data_dir}/broker.log)")
        try:
            kafka.start()
        except LocalKafkaError as exc:
            say(f"error: {exc}")
            return 1
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers

    if env["AUTH_MODE"] == "dev":
        say(f"admin token (scope admin, 12 h): {write_admin_token(env)}")

    services = ServiceGroup(stop_timeout=STOP_TIMEOUT_S, report=say)
    exit_code = 0
    try:
        for name in PROCESSES:
            if stopping.is_set():
                break
            services.add(start_service(name, name, env))
        exit_code = _supervise(services, (command_url, query_url, console_url), stopping)
    finally:
        if not stop_services(services):
            exit_code = 1
        if kafka is not None:
            say("stopping local Kafka")
            kafka.stop()
    say(f"system stopped (exit code {exit_code})")
    return exit_code


def _supervise(
    services: ServiceGroup, api_urls: tuple[str, str, str], stopping: threading.Event
) -> int:
    """Announce "system up" once the APIs are healthy, then watch until a stop or a death."""
    health_deadline = time.monotonic() + HEALTH_TIMEOUT_S
    healthy = False
    while not stopping.is_set():
        if first_exited(services) is not None:
            return 1
        if not healthy:
            healthy = all(http_ok(f"{url}/healthz", timeout=2.0) for url in api_urls)
            if healthy:
                command_url, query_url, console_url = api_urls
                say(
                    f"system up: command API {command_url}  query API {query_url}  "
                    f"console {console_url} (sign in with the admin token; "
                    "Ctrl-C stops everything)"
                )
            elif time.monotonic() >= health_deadline:
                say(
                    f"error: the APIs did not answer GET /healthz within {HEALTH_TIMEOUT_S:g}s "
                    f"({' and '.join(api_urls)})"
                )
                return 1
        stopping.wait(0.5 if healthy else 0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
