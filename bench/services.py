"""The system's processes as the benchmarks run them: console scripts in their own process
groups, their peak memory (VmHWM, gunicorn workers included), a local Kafka broker, and py-spy.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from bench.auth import AUTH_ENV
from devtools import processes
from devtools.local_kafka import LocalKafka
from devtools.ports import free_port
from devtools.processes import BIN_DIR, ServiceGroup, ServiceProcess, child_env


def console_script(name: str) -> list[str]:
    """The argv of one of the project's console scripts (installed in the venv)."""
    try:
        return processes.console_script(name)
    except FileNotFoundError as exc:
        raise SystemExit(f"{exc}; for the benchmarks: `pip install -e '.[dev,bench]'`") from None


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


class Service(ServiceProcess):
    """One of our processes logging to a file, with the CPU and peak memory of it and of its
    children (e.g. gunicorn workers)."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        super().__init__(name, argv, child_env(env), log_path)
        self._peaks: dict[int, tuple[str, int]] = {}

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


class Services(ServiceGroup):
    """Starts services in one work folder; stops them all, newest first.

    Every service runs with authentication on: AUTH_MODE=dev with DATA_DIR the work folder
    (unless env says otherwise), so they all verify, and mint their service tokens with, the
    one dev key in <workdir>/auth/, the key bench.auth signs the benchmarks' tokens with.
    """

    def __init__(self, workdir: Path) -> None:
        super().__init__(stop_timeout=20)
        self.workdir = workdir

    def start(self, name: str, argv: list[str], env: Mapping[str, str]) -> Service:
        """Start a service (our environment, auth on, plus env) logging to <workdir>/<name>.log."""
        env = {**AUTH_ENV, "DATA_DIR": str(self.workdir), **env}
        return self.add(Service(name, argv, env, self.workdir / f"{name}.log")).start()


@contextlib.contextmanager
def kafka_broker(workdir: Path) -> Iterator[str]:
    """Bootstrap servers of a broker: BENCH_KAFKA_BOOTSTRAP if set, else a local one we start."""
    given = os.environ.get("BENCH_KAFKA_BOOTSTRAP")
    if given:
        yield given
        return
    started = time.monotonic()
    with LocalKafka(port=free_port(), data_dir=workdir / "kafka") as broker:
        print(f"  Kafka ready on {broker.bootstrap_servers} in {time.monotonic() - started:.0f}s")
        yield broker.bootstrap_servers


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
