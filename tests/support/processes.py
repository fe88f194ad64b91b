"""The services as real subprocesses for integration, end-to-end and fault tests.

`ServiceRunner` starts them on one work directory (and so one SQLite event store), each from its
console script on a free port where it serves HTTP, logging to `<workdir>/<name>.log`; leaving
its with block stops them all and prints their output tails. The process machinery itself is
devtools.processes; its names are importable from here too, as the tests have always done.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from command_service.adapters.event_store import EventStore
from devtools.ports import free_port
from devtools.processes import (
    BIN_DIR,
    REPO_ROOT,
    HttpService,
    ServiceGroup,
    ServiceProcess,
    child_env,
    console_script,
)
from devtools.waiting import wait_until
from shared.infra.db import create_database_engine
from tests.support.auth import bearer

__all__ = [
    "BIN_DIR",
    "REPO_ROOT",
    "HttpService",
    "ServiceProcess",
    "ServiceRunner",
    "console_script",
    "free_port",
    "wait_until",
]


class ServiceRunner(ServiceGroup):
    """Starts services sharing one work directory (and so one event store); stops them all."""

    def __init__(
        self, workdir: Path, prepare_event_store: bool = True, env: Mapping[str, str] | None = None
    ) -> None:
        # Leaving a with block prints the output tails: pytest shows them when a test failed.
        super().__init__(stop_timeout=15, tails_on_exit=40)
        self.workdir = workdir
        self.env = dict(env or {})  # given to every service of this run
        if prepare_event_store:
            self.prepare_event_store()

    def prepare_event_store(self) -> None:
        """Create the SQLite file (WAL) and its tables before any service starts.

        Several processes opening a brand-new SQLite file at once can fail with "database is
        locked" (switching to WAL, creating tables); a deployment creates the schema first too.
        """
        engine = create_database_engine(self.event_store_url)
        try:
            EventStore(engine).create_schema()
        finally:
            engine.dispose()

    @property
    def admin_headers(self) -> dict[str, str]:
        """An admin bearer token the services of this run accept."""
        return bearer(self.workdir)

    @property
    def event_store_url(self) -> str:
        return f"sqlite:///{self.workdir / 'events.db'}"

    def base_env(self, **overrides: str) -> dict[str, str]:
        """The environment every service gets: this run's data dir and event store."""
        run = {
            "DATA_DIR": str(self.workdir),
            "EVENT_STORE_URL": self.event_store_url,
            "LOG_LEVEL": "INFO",
            "AUTH_MODE": "dev",
        }
        return child_env({**run, **self.env, **overrides})

    def start(self, name: str, argv: list[str], **env: str) -> ServiceProcess:
        """Start a service without an HTTP endpoint (not waited for: use wait_for_output)."""
        log_path = self.workdir / f"{name}.log"
        return self.add(ServiceProcess(name, argv, self.base_env(**env), log_path)).start()

    def start_http(
        self, name: str, script: str, module: str, host_var: str, port_var: str, **env: str
    ) -> HttpService:
        """Start an HTTP service on a free port (set through host_var/port_var); wait for it."""
        port = free_port()
        service = HttpService(
            name,
            console_script(script, module),
            self.base_env(**{host_var: "127.0.0.1", port_var: str(port)}, **env),
            self.workdir / f"{name}.log",
            port,
        )
        return self.add(service).start().wait_healthy()

    def start_worker(self, name: str, script: str, module: str, **env: str) -> ServiceProcess:
        """Start a console script without an HTTP endpoint (see start)."""
        return self.start(name, console_script(script, module), **env)

    def command_api(self, name: str = "command-api", **env: str) -> HttpService:
        """Start the command API (`command-api`) on a free port and wait for /healthz."""
        return self.start_http(
            name,
            "command-api",
            "command_service.server",
            "COMMAND_API_HOST",
            "COMMAND_API_PORT",
            **env,
        )

    def relay(
        self, bootstrap_servers: str, topic: str, name: str = "relay", **env: str
    ) -> ServiceProcess:
        """Start a relay (`command-relay`) publishing this run's event store to `topic`."""
        return self.start_worker(
            name,
            "command-relay",
            "command_service.relay_main",
            KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
            KAFKA_TOPIC=topic,
            **env,
        )
