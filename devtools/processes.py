"""The system's processes as tests, benchmarks and `make run` start them.

A ServiceProcess runs in a session of its own, so its process group holds its children too
(gunicorn's workers): stopping it leaves nothing behind, and killing the group is a crash.
Its output goes to a log file (appended to across restarts) or, line by line, to a callback
(devtools.terminal.PrefixedOutput shows every process on one terminal). A ServiceGroup stops
all the services it was given, also when the block that started them fails.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Self, TypeVar

from devtools.waiting import http_ok, wait_until

__all__ = [
    "BIN_DIR",
    "REPO_ROOT",
    "HttpService",
    "ServiceGroup",
    "ServiceProcess",
    "child_env",
    "console_script",
]

BIN_DIR = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parent.parent
# What a service stopped with SIGTERM may exit with: 0 from its handler, or -SIGTERM when the
# signal came before it installed one.
CLEAN_STOP_CODES = (0, -signal.SIGTERM)
_RECENT_LINES = 500  # kept for tail() when the output goes to a callback instead of a file

S = TypeVar("S", bound="ServiceProcess")


def console_script(name: str, module: str | None = None) -> list[str]:
    """The argv of a console script installed beside this interpreter (the project's venv).

    Without it, `module`'s main() run by this interpreter if a module is given; else an error.
    """
    script = BIN_DIR / name
    if script.exists():
        return [str(script)]
    if module is not None:
        return [sys.executable, "-c", f"import {module} as m; m.main()"]
    raise FileNotFoundError(f"{script} not found: install the project first (`make install`)")


def child_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment, unbuffered output (so lines arrive as they are written), the overrides."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(overrides or {})}


class ServiceProcess:
    """One service subprocess, its output in a log file or handed line by line to on_line."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        log_path: Path | None = None,
        *,
        on_line: Callable[[str], None] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        if (log_path is None) == (on_line is None):
            raise ValueError("give a ServiceProcess either a log_path or an on_line callback")
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.log_path = log_path
        self.on_line = on_line
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._recent: deque[str] = deque(maxlen=_RECENT_LINES)
        self._sigterm_sent = False

    def start(self) -> Self:
        """Start (or restart) the process."""
        if self.is_running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._sigterm_sent = False
        if self.log_path is None:
            self.proc = self._popen(subprocess.PIPE)
            assert self.proc.stdout is not None
            self._reader = threading.Thread(
                target=self._read_lines, args=(self.proc.stdout,), name=self.name, daemon=True
            )
            self._reader.start()
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            log_file.write(f"----- starting {self.name}: {' '.join(self.argv)}\n".encode())
            log_file.flush()
            self.proc = self._popen(log_file)
        return self

    def _popen(self, stdout: IO[bytes] | int) -> subprocess.Popen[bytes]:
        # A session of its own: its children share its process group, and a terminal's Ctrl-C
        # reaches only whoever started it, who decides how it stops.
        return subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _read_lines(self, stream: IO[bytes]) -> None:
        assert self.on_line is not None
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                self._recent.append(line)
                self.on_line(line)

    @property
    def pid(self) -> int:
        """The pid of the last start (also its process group id)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.proc.pid

    @property
    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc is not None else None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process to exit and return its exit code (TimeoutExpired if it doesn't)."""
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.proc.wait(timeout)

    def terminate(self) -> None:
        """Ask the process to stop (SIGTERM, once per start) without waiting for it."""
        if self.proc is not None and self.proc.poll() is None and not self._sigterm_sent:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            self._sigterm_sent = True

    def stop(self, timeout: float = 30, on_timeout: Callable[[], None] | None = None) -> int | None:
        """SIGTERM and wait; SIGKILL the group if it does not exit in time (after calling
        on_timeout). Kills what is left of the group either way. The exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                if on_timeout is not None:
                    on_timeout()
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

    def join_output(self, timeout: float = 2) -> None:
        """Wait until the last lines of an exited process have reached on_line."""
        if self._reader is not None:
            self._reader.join(timeout)

    def output(self) -> str:
        """What the process wrote so far: the whole log (all runs), or the recent lines."""
        if self.log_path is None:
            return "\n".join(self._recent)
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def output_size(self) -> int:
        """The current length of the output, to wait for something logged after this point."""
        return len(self.output())

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

    def wait_http(self, url: str, timeout: float = 60, interval: float = 0.1) -> Self:
        """Wait until GET url answers 200; fail early with the output tail if the process dies."""

        def answered() -> bool:
            self._fail_if_exited(f"waiting for {url}")
            return http_ok(url)

        wait_until(
            answered, timeout, lambda: f"{self.name} not answering {url}:\n{self.tail()}", interval
        )
        return self

    def _fail_if_exited(self, doing: str) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.proc.returncode} while {doing}:\n{self.tail()}"
            )


class HttpService(ServiceProcess):
    """A service that answers GET /healthz on 127.0.0.1:port once it is up."""

    def __init__(
        self, name: str, argv: Sequence[str], env: Mapping[str, str], log_path: Path, port: int
    ) -> None:
        super().__init__(name, argv, env, log_path)
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    def wait_healthy(self, timeout: float = 30) -> Self:
        """Block until /healthz answers 200; fail early with the log tail if the process dies."""
        return self.wait_http(f"{self.base_url}/healthz", timeout)


class ServiceGroup:
    """Services started together; stop_all(), or the end of a with block, stops every one
    (and there prints their output tails, if asked to)."""

    def __init__(
        self,
        stop_timeout: float = 20,
        report: Callable[[str], None] = print,
        tails_on_exit: int = 0,
    ) -> None:
        self.services: list[ServiceProcess] = []
        self.stop_timeout = stop_timeout
        self.report = report  # where stop_all() says what went wrong
        # Output lines of each service printed after the with block stops them (0: none).
        self.tails_on_exit = tails_on_exit

    def add(self, service: S) -> S:
        """Stop `service` with the others (it need not be started yet)."""
        self.services.append(service)
        return service

    def stop_all(self, timeout: float | None = None, *, together: bool = False) -> bool:
        """Stop every service, newest first; True if each that ran stopped cleanly by itself.

        Each gets SIGTERM and `timeout` seconds before SIGKILL to its group. together=True sends
        every SIGTERM at once with one shared deadline, for services that need not wait for
        one another. Any leftovers of a service's group (orphaned workers) are killed.
        """
        limit = self.stop_timeout if timeout is None else timeout
        services = list(reversed(self.services))
        running = [service for service in services if service.is_running]
        if together:
            for service in running:
                service.terminate()
        deadline = time.monotonic() + limit
        clean = True
        for service in services:
            budget = max(0.1, deadline - time.monotonic()) if together else limit
            killing = functools.partial(
                self.report, f"{service.name} did not stop within {limit:g}s; killing it"
            )
            try:
                code = service.stop(budget, on_timeout=killing)
            except Exception as exc:  # keep stopping the others
                self.report(f"stopping {service.name} failed: {exc!r}")
                clean = False
                continue
            if service in running and code not in CLEAN_STOP_CODES:
                self.report(f"{service.name} exited with code {code} while stopping")
                clean = False
        return clean

    def print_tails(self, lines: int = 40) -> None:
        """Print each service's last output lines (pytest shows them when a test fails)."""
        for service in self.services:
            where = service.log_path or "output"
            print(f"\n===== {service.name} ({where}) last {lines} lines =====")
            print(service.tail(lines))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()
        if self.tails_on_exit:
            self.print_tails(self.tails_on_exit)
