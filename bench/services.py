"""The system's processes as the benchmarks run them: console scripts in their own process
groups, their peak memory (VmHWM, gunicorn workers included), a local Kafka broker, and py-spy.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from bench.common import REPO_ROOT
from devtools.local_kafka import LocalKafka
from devtools.ports import free_port

BIN_DIR = Path(sys.executable).parent


def console_script(name: str) -> list[str]:
    """The argv of one of the project's console scripts (installed in the venv)."""
    script = BIN_DIR / name
    if not script.exists():
        raise SystemExit(f"{script} not found: run `pip install -e '.[dev,bench]'` first")
    return [str(script)]


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a process so far (VmHWM), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Service:
    """One of our processes (and its children, e.g. gunicorn workers), logging to a file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **env}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self._peaks: dict[int, tuple[str, int]] = {}

    def start(self) -> Service:
        with self.log_path.open("ab") as log_file:
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
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_http(self, url: str, timeout: float = 60) -> Service:
        """Wait until GET url answers 200; fail with the log tail if the process dies."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not answering {url}:\n{self.tail()}")

    def wait_output(self, text: str, timeout: float = 60) -> Service:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output():
                return self
            if not self.running():
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} never logged {text!r}:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        """The process and its descendants (gunicorn master and workers)."""
        try:
            root = psutil.Process(self.pid)
            return [root.pid, *(child.pid for child in root.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the process and its live descendants."""
        total = 0.0
        for pid in self.worker_pids():
            try:
                times = psutil.Process(pid).cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def sample_memory(self) -> None:
        """Remember each process's VmHWM (call during and at the end of a run)."""
        for pid in self.worker_pids():
            peak = vm_hwm_kib(pid)
            role = "master" if pid == self.pid else "worker"
            if peak:
                self._peaks[pid] = (role, max(peak, self._peaks.get(pid, ("", 0))[1]))

    def peak_memory_mib(self) -> dict[str, float]:
        """Peak RSS per process in MiB: {"<name>": x}, or per gunicorn master and worker."""
        self.sample_memory()
        peaks = sorted(self._peaks.items())
        if len(peaks) == 1:
            return {self.name: round(peaks[0][1][1] / 1024, 1)}
        result: dict[str, float] = {}
        workers = 0
        for _pid, (role, kib) in peaks:
            if role == "master":
                result[f"{self.name} master"] = round(kib / 1024, 1)
            else:
                workers += 1
                result[f"{self.name} worker {workers}"] = round(kib / 1024, 1)
        return result

    def stop(self, timeout: float = 20) -> int | None:
        """SIGTERM the process, SIGKILL its group if it does not exit in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        return self.proc.returncode

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.output().splitlines()[-lines:]) or "<no output>"


def machine_busy_seconds() -> tuple[float, float]:
    """(CPU seconds busy on all cores, wall seconds) since boot, to difference around a run."""
    times = psutil.cpu_times()
    busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
    return busy, time.monotonic()


def cpu_usage(services: list[Service], run: Any) -> tuple[Any, dict[str, float]]:
    """run() and the CPU it cost: cores used by each service and by the whole machine."""
    before = {s.name: s.cpu_seconds() for s in services}
    busy_before, wall_before = machine_busy_seconds()
    outcome = run()
    busy_after, wall_after = machine_busy_seconds()
    wall = max(wall_after - wall_before, 1e-9)
    usage = {
        f"{s.name}_cores": round((s.cpu_seconds() - before[s.name]) / wall, 2) for s in services
    }
    usage["machine_cores_busy"] = round((busy_after - busy_before) / wall, 2)
    usage["machine_cores"] = float(psutil.cpu_count() or 1)
    return outcome, usage


class Services:
    """Starts services in one work folder; stops them all, newest first."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Service] = []

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> Service:
        service = Service(name, argv, env, self.workdir / f"{name}.log").start()
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.started):
            service.stop()

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


@contextlib.contextmanager
def kafka_broker(workdir: Path) -> Iterator[str]:
    """Bootstrap servers of a broker: BENCH_KAFKA_BOOTSTRAP if set, else a local one we start."""
    given = os.environ.get("BENCH_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    broker = LocalKafka(port=free_port(), data_dir=workdir / "kafka")
    started = time.monotonic()
    broker.start()
    print(f"  Kafka ready on {broker.bootstrap_servers} in {time.monotonic() - started:.0f}s")
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


class Profiler:
    """py-spy sampling a running process (and its subprocesses) into a collapsed-stack file."""

    def __init__(self, pid: int, out: Path, seconds: float, rate: int = 200) -> None:
        self.out = out
        argv = [str(BIN_DIR / "py-spy"), "record", "--pid", str(pid), "--subprocesses"]
        argv += ["--duration", str(max(1, round(seconds))), "--rate", str(rate)]
        argv += ["--format", "raw", "--nonblocking", "--output", str(out)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def interrupt(self) -> None:
        """Stop sampling now (py-spy writes what it has on SIGINT, like Ctrl-C)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 60) -> dict[str, Any]:
        """Wait for py-spy and summarize the stacks (see summarize_stacks); {} if it failed."""
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return {"error": "py-spy did not finish"}
        if self.proc.returncode != 0 or not self.out.exists():
            return {"error": f"py-spy failed: {err.decode(errors='replace')[-300:]}"}
        return summarize_stacks(self.out.read_text())


_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OUR_PACKAGES = ("command_service/", "query_service/", "shared/")


def _frame_label(frame: str) -> tuple[str, str]:
    """'func (path/to/file.py:12)' -> ('file.py:func', path)."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    path = match.group("file")
    short = "/".join(path.split("/")[-2:]) if "site-packages" in path else path
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            short = path.split(marker, 1)[1]
            break
    return f"{short}:{match.group('func')}", path


def summarize_stacks(raw: str, top: int = 15) -> dict[str, Any]:
    """Self and inclusive shares of the busiest functions in py-spy's collapsed stacks.

    `inclusive_ours` is the share of samples in which one of our functions is on the stack,
    which tells which of our steps the time goes to; `by_library` groups self time by package.
    """
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        label, path = _frame_label(frames[-1])
        self_counts[label] += count
        libraries[_library_of(path)] += count
        seen = set()
        for frame in frames:
            frame_label, frame_path = _frame_label(frame)
            if any(pkg in frame_path for pkg in OUR_PACKAGES) and frame_label not in seen:
                seen.add(frame_label)
                inclusive[frame_label] += count
    if not total:
        return {"samples": 0}

    def shares(counter: Counter[str]) -> list[list[Any]]:
        return [[name, round(100 * n / total, 1)] for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "self_top_pct": shares(self_counts),
        "inclusive_ours_pct": shares(inclusive),
        "self_by_library_pct": shares(libraries),
    }


def _library_of(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0]
    for pkg in OUR_PACKAGES:
        if pkg in path:
            return pkg.rstrip("/") + " (ours)"
    if "/lib/python3" in path:
        return "stdlib: " + path.split("/lib/python3", 1)[1].split("/", 2)[1]
    if path and not path.startswith(("/", "<")):
        return path.split("/", 1)[0]  # py-spy shortens site-packages and stdlib paths
    return path or "?"
