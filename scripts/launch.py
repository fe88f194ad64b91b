"""What `make run` and `make run-cluster` share: one terminal, Ctrl-C, starting and stopping.

Both scripts start each service in its own session with its output prefixed by its name, stop
everything on SIGINT or SIGTERM, and treat a service that dies as the end of the run.
"""

from __future__ import annotations

import signal
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import FrameType

from devtools.ports import accepts_connections
from devtools.processes import ServiceGroup, ServiceProcess, console_script
from devtools.terminal import PrefixedOutput
from shared.infra.auth_setup import mint_local_token
from shared.infra.config import Settings
from shared.infra.dev_keys import ADMIN_TOKEN_FILE, auth_dir, write_token_file

ADMIN_TOKEN_TTL_S = 12 * 3600
STOP_TIMEOUT_S = 20.0

# The services' output and our own lines share stdout; whole lines only, never interleaved.
console = PrefixedOutput()
say = console.say


def stop_requested() -> threading.Event:
    """An event that SIGINT (Ctrl-C) or SIGTERM sets."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stopping


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


def first_taken(urls: Iterable[str]) -> str | None:
    """The first URL something already answers at: a leftover would pass our checks in its place."""
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if accepts_connections(parts.port or 80, parts.hostname or "127.0.0.1"):
            return url
    return None


def start_service(name: str, script: str, env: dict[str, str]) -> ServiceProcess:
    """Start one service in its own session (so a terminal's Ctrl-C reaches only us)."""
    service = ServiceProcess(name, console_script(script), env, on_line=console.printer(name))
    service.start()
    say(f"started {name} (pid {service.pid})")
    return service


def first_exited(services: ServiceGroup) -> ServiceProcess | None:
    """A service that is no longer running, said on the terminal; None while all run."""
    for service in services.services:
        if not service.is_running:
            say(f"error: {service.name} exited with code {service.returncode}")
            return service
    return None


def stop_services(services: ServiceGroup) -> bool:
    """Stop every service at once; True if each stopped cleanly. Their last lines come first."""
    say("stopping the system")
    # All at once is safe: each service finishes its current unit of work and resumes from
    # its stored position (relay: the event log; projector: the read model) on next start.
    clean = services.stop_all(together=True)
    for service in services.services:
        service.join_output()
    return clean
