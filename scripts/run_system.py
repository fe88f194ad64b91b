"""`make run`: the whole system on one machine, without Docker.

Starts a local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS points at one), then the command
API, the relay, the query API and the projector, each as its own process with its output
prefixed by its name. "system up" is printed only once both APIs answer GET /healthz. Ctrl-C
(or SIGTERM) stops them all cleanly, broker last. If any process dies, or the APIs are not
healthy within HEALTH_TIMEOUT_S, the others are stopped too and the exit code is 1, so a broken
system never looks half-alive.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import IO

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # Run as a file (`python scripts/run_system.py`): devtools is not an installed package.
    sys.path.insert(0, str(REPO))

from devtools.local_kafka import LocalKafka, LocalKafkaError  # noqa: E402

PROCESSES = ("command-api", "command-relay", "query-api", "query-projector")
COLORS = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m")
RESET = "\033[0m"
HEALTH_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

# The pump threads and the supervisor share stdout; whole lines only, never interleaved.
_output_lock = threading.Lock()
# An explicit empty proxy map: an http_proxy in the environment must not route our loopback
# health checks elsewhere.
_no_proxy_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _say(text: str) -> None:
    with _output_lock:
        print(text, flush=True)


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
    if not env.get("COMMAND_API_URL"):
        # The projector repairs gaps through the command API; its default URL assumes port 8001.
        env["COMMAND_API_URL"] = api_url(env, "COMMAND_API_HOST", "COMMAND_API_PORT", 8001)
    return env


def _answers(url: str) -> bool:
    """Whether something accepts TCP connections at the URL's host and port."""
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 80), timeout=1.0):
            return True
    except OSError:
        return False


def _is_healthy(base_url: str) -> bool:
    try:
        with _no_proxy_opener.open(f"{base_url}/healthz", timeout=2.0) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _pump(name: str, color: str, stream: IO[bytes]) -> None:
    prefix = f"{color}{name:>16} |{RESET} " if sys.stdout.isatty() else f"{name:>16} | "
    for raw in iter(stream.readline, b""):
        _say(prefix + raw.decode(errors="replace").rstrip("\n"))


def _executable(name: str) -> str:
    # Console scripts live beside the interpreter of the venv `make run` uses.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _start(
    name: str, color: str, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], threading.Thread]:
    """Start one service in its own session (so a terminal's Ctrl-C reaches only us)."""
    child = subprocess.Popen(
        [_executable(name)],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    assert child.stdout is not None
    pump = threading.Thread(target=_pump, args=(name, color, child.stdout), daemon=True)
    pump.start()
    _say(f"started {name} (pid {child.pid})")
    return child, pump


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
    for url in (command_url, query_url):
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

    children: dict[str, subprocess.Popen[bytes]] = {}
    pumps: list[threading.Thread] = []
    exit_code = 0
    try:
        for index, name in enumerate(PROCESSES):
            if stopping.is_set():
                break
            children[name], pump = _start(name, COLORS[index % len(COLORS)], env)
            pumps.append(pump)
        exit_code = _supervise(children, (command_url, query_url), stopping)
    finally:
        _say("stopping the system")
        if not _stop_all(children):
            exit_code = 1
        for pump in pumps:
            pump.join(timeout=2)  # so the services' last lines come before ours
        if kafka is not None:
            _say("stopping local Kafka")
            kafka.stop()
    _say(f"system stopped (exit code {exit_code})")
    return exit_code


def _supervise(
    children: dict[str, subprocess.Popen[bytes]],
    api_urls: tuple[str, str],
    stopping: threading.Event,
) -> int:
    """Announce "system up" once the APIs are healthy, then watch until a stop or a death."""
    health_deadline = time.monotonic() + HEALTH_TIMEOUT_S
    healthy = False
    while not stopping.is_set():
        for name, child in children.items():
            if child.poll() is not None:
                _say(f"error: {name} exited with code {child.returncode}")
                return 1
        if not healthy:
            healthy = all(_is_healthy(url) for url in api_urls)
            if healthy:
                command_url, query_url = api_urls
                _say(
                    f"system up: command API {command_url}  query API {query_url}  "
                    "(Ctrl-C stops everything)"
                )
            elif time.monotonic() >= health_deadline:
                _say(
                    f"error: the APIs did not answer GET /healthz within {HEALTH_TIMEOUT_S:g}s "
                    f"({' and '.join(api_urls)})"
                )
                return 1
        stopping.wait(0.5 if healthy else 0.2)
    return 0


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> bool:
    """SIGTERM every running service at once; True if all of them stopped cleanly."""
    # All at once is safe: each service finishes its current unit of work and resumes from its
    # stored position (relay: the event log; projector: the read model) on the next start.
    running = {name: child for name, child in children.items() if child.poll() is None}
    for child in running.values():
        child.send_signal(signal.SIGTERM)
    clean = True
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for name, child in running.items():
        try:
            code = child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _say(f"{name} did not stop within {STOP_TIMEOUT_S:g}s; killing it")
            child.kill()
            code = child.wait()
        # -SIGTERM: our signal came before the service installed its handler, which is fine.
        if code not in (0, -signal.SIGTERM):
            _say(f"{name} exited with code {code} while stopping")
            clean = False
    for child in children.values():
        if child.returncode != 0:
            # A service that died or was killed may have left its gunicorn workers behind, still
            # holding the port; they are in the process group it led.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
    return clean


if __name__ == "__main__":
    sys.exit(main())
