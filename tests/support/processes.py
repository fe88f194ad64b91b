"""Run the services as real subprocesses for integration, end-to-end and fault tests.

Each service runs from its console script in its own process group, writes stdout and stderr
to `<workdir>/<name>.log`, and can be stopped gracefully (SIGTERM) or killed (SIGKILL to the
whole group, as a crash would take gunicorn's workers too). `ServiceRunner` remembers what it
started so one teardown stops everything and prints the log tails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import requests

from command_service.adapters.event_store import EventStore
from shared.infra.db import create_database_engine

T = TypeVar("T")
S = TypeVar("S", bound="ServiceProcess")

BIN_DIR = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    message: str | Callable[[], str] = "condition not met",
    interval: float = 0.05,
) -> T:
    """Poll until condition() returns something truthy and return it; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.0f}s: {text}")
        time.sleep(interval)


def console_script(name: str, module: str) -> list[str]:
    """The argv of an installed console script, falling back to running its module's main()."""
    script = BIN_DIR / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", f"import {module} as m; m.main()"]


class ServiceProcess:
    """One service subprocess with its log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path):
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        """Start (or restart) the process; output is appended to the log file."""
        if self.is_running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"----- starting {self.name}: {' '.join(self.argv)}\n".encode())
            log_file.flush()
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; SIGKILL the group if it does not exit in time. The exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._kill_group_leftovers()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL the whole process group at once, as a crash would."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def _kill_group_leftovers(self) -> None:
        # Workers that outlive their master (after a SIGKILL) would keep ports and files busy.
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def output(self) -> str:
        """Everything the process wrote so far (all runs)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 60) -> str:
        """The last lines of output, for failure messages."""
        return "\n".join(self.output().splitlines()[-lines:]) or "<no output>"

    def wait_for_output(self, text: str, timeout: float = 30, after: int = 0) -> None:
        """Wait until the output after offset `after` contains `text`; fail if the process dies."""

        def seen() -> bool:
            if text in self.output()[after:]:
                return True
            self._fail_if_exited(f"waiting for {text!r}")
            return False

        wait_until(seen, timeout, lambda: f"{self.name} never logged {text!r}:\n{self.tail()}")

    def output_size(self) -> int:
        """The current length of the output, to wait for something logged after this point."""
        return len(self.output())

    def _fail_if_exited(self, doing: str) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.proc.returncode} while {doing}:\n{self.tail()}"
            )


class HttpService(ServiceProcess):
    """A service that answers GET /healthz on host:port once it is up."""

    def __init__(
        self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path, port: int
    ):
        super().__init__(name, argv, env, log_path)
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def wait_healthy(self, timeout: float = 30) -> HttpService:
        """Block until /healthz answers 200; fail early with the log tail if the process dies."""

        def healthy() -> bool:
            self._fail_if_exited("starting")
            try:
                return requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout, lambda: f"{self.name} not healthy:\n{self.tail()}", 0.1)
        return self


class ServiceRunner:
    """Starts services sharing one work directory (and so one event store); stops them all."""

    def __init__(self, workdir: Path, prepare_event_store: bool = True) -> None:
        self.workdir = workdir
        self.services: list[ServiceProcess] = []
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
    def event_store_url(self) -> str:
        return f"sqlite:///{self.workdir / 'events.db'}"

    def base_env(self, **overrides: str) -> dict[str, str]:
        """The environment every service gets: this run's data dir and event store."""
        env = dict(os.environ)
        env.update(
            PYTHONUNBUFFERED="1",
            DATA_DIR=str(self.workdir),
            EVENT_STORE_URL=self.event_store_url,
            LOG_LEVEL="INFO",
        )
        env.update(overrides)
        return env

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
        self._track(service).start()
        return service.wait_healthy()

    def start_worker(self, name: str, script: str, module: str, **env: str) -> ServiceProcess:
        """Start a service without an HTTP endpoint (not waited for: use wait_for_output)."""
        service = ServiceProcess(
            name, console_script(script, module), self.base_env(**env), self.workdir / f"{name}.log"
        )
        return self._track(service).start()

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
            "command_service.outbox.relay",
            KAFKA_BOOTSTRAP_SERVERS=bootstrap_servers,
            KAFKA_TOPIC=topic,
            **env,
        )

    def _track(self, service: S) -> S:
        self.services.append(service)
        return service

    def stop_all(self, timeout: float = 15) -> None:
        """Stop every service (SIGTERM, then SIGKILL), in reverse start order."""
        for service in reversed(self.services):
            try:
                service.stop(timeout)
            except Exception as exc:  # keep stopping the others
                print(f"stopping {service.name} failed: {exc!r}")

    def print_tails(self, lines: int = 40) -> None:
        """Print each service's last output lines (pytest shows them when a test fails)."""
        for service in self.services:
            print(f"\n===== {service.name} ({service.log_path}) last {lines} lines =====")
            print(service.tail(lines))
