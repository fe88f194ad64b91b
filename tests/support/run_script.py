"""Running `make run`'s and `make run-cluster`'s scripts as a user does, from a test: the
supervisor in its own session, its output by line, and an environment of the test's own."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path

from devtools.processes import ServiceProcess
from devtools.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTED_LINE = re.compile(r"^started (\S+) \(pid (\d+)\)$")
ORDER = {
    "customer_id": "c-1",
    "lines": [{"product_id": "p-1", "quantity": 2, "unit_price": "9.99"}],
}
# Nothing inherited may point a run at another database, command API or identity provider:
# the run's own default, AUTH_MODE=dev with a key in DATA_DIR, is under test.
INHERITED_SETTINGS = (
    "EVENT_STORE_URL",
    "READ_MODEL_URL",
    "COMMAND_API_URL",
    "COMMAND_API_HOST",
    "QUERY_API_HOST",
    "QUERY_API_URL",
    "CONSOLE_HOST",
    "KAFKA_BOOTSTRAP_SERVERS",
    "CONSOLE_TOKEN_FILE",
    "COMMAND_API_TOKEN_FILE",
    "AUTH_MODE",
    "AUTH_ISSUER",
    "AUTH_AUDIENCE",
    "AUTH_JWKS_URL",
    "AUTH_PUBLIC_KEY_FILE",
    "AUTH_ALGORITHMS",
)


def own_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """environ without the settings a run must choose for itself."""
    return {name: value for name, value in environ.items() if name not in INHERITED_SETTINGS}


class Supervisor:
    """`python scripts/run_system.py` in its own session, its output collected line by line."""

    def __init__(self, env: dict[str, str], script: Path) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        argv = [sys.executable, str(script)]
        self.process = ServiceProcess("run_system", argv, env, on_line=self._collect).start()

    def _collect(self, line: str) -> None:
        with self._lock:
            self._lines.append(line)

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def output(self) -> str:
        return "\n".join(self.lines()) or "<no output>"

    def wait_for_line(self, prefix: str, timeout: float) -> str:
        """The first line starting with prefix; fails at once if the supervisor exits first."""

        def found() -> str | None:
            exited = not self.process.is_running
            line = next((line for line in self.lines() if line.startswith(prefix)), None)
            if line is None and exited:
                raise AssertionError(
                    f"run_system exited with {self.process.returncode} before printing "
                    f"{prefix!r}:\n{self.output()}"
                )
            return line

        return wait_until(found, timeout, lambda: f"no {prefix!r} line:\n{self.output()}", 0.1)

    def child_pids(self) -> dict[str, int]:
        """name -> pid, from the "started <name> (pid N)" lines."""
        matches = (STARTED_LINE.match(line) for line in self.lines())
        return {m.group(1): int(m.group(2)) for m in matches if m is not None}

    def wait_exit(self, timeout: float) -> int:
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"run_system still running {timeout:.0f}s later:\n{self.output()}"
            ) from None
        self.process.join_output(timeout=5)  # the last lines, for the assertions and the report
        return code

    def kill_everything(self) -> None:
        """Teardown after a failure: no supervisor, service or gunicorn worker may outlive it."""
        for pgid in (self.process.pid, *self.child_pids().values()):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def process_group_alive(pgid: int) -> bool:
    """Whether any process of this group still exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (a recycled id)
        return True
    return True
