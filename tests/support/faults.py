"""Fault injection for tests/faults: a steady load, extra relays and projectors, process-group
checks after kill -9, and a small disk for the event log that can be filled and emptied.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.support.order_system import OrderSystem
from tests.support.processes import ServiceProcess, ServiceRunner
from tests.support.workload import Workload

# No options: the scenarios run the projector's own default session timeout (10 s,
# PROJECTOR_SESSION_TIMEOUT_MS), the one a deployment gets, not kafka-python's 45 s.
PROJECTOR_ARGS: tuple[str, ...] = ()


class WorkloadStopped(Exception):
    """Raised in a client thread of a stopped workload, so that it gives up at once."""


class SteadyWorkload(Workload):
    """The e2e Workload, but clients take up new orders at a fixed rate instead of at once.

    So a load of N orders lasts about N / rate seconds and a fault lands in the middle of it.
    Also remembers when each command was acknowledged, and can be stopped (a failed scenario
    must not leave clients retrying until their deadline; see stop_started_workloads).
    """

    def __init__(
        self,
        command_url: Callable[[], str],
        orders: int,
        rate_per_s: float,
        seed: int = 7,
        *,
        headers: Mapping[str, str],
    ) -> None:
        super().__init__(command_url, orders, seed, headers=headers)
        self.rate_per_s = rate_per_s
        self.acknowledged_at: list[float] = []
        self._t0: float | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

        def url_unless_stopped() -> str:
            if self._stopped.is_set():
                raise WorkloadStopped()
            return command_url()

        self.command_url = url_unless_stopped

    def start(self, threads: int, deadline_s: float = 300) -> threading.Thread:
        self._thread = super().start(threads, deadline_s)
        _STARTED.append(self)
        return self._thread

    def stop(self, timeout: float = 30) -> None:
        """Make every client give up (recorded as unexpected) and wait for them."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self) -> tuple[str, dict[str, Any], tuple[str, ...]] | None:
        with self._lock:
            if self._next >= len(self.plans) or self._stopped.is_set():
                return None
            n = self._next
            self._next += 1
            if self._t0 is None:
                self._t0 = time.monotonic()
            due = self._t0 + n / self.rate_per_s
        delay = due - time.monotonic()
        if delay > 0:
            self._stopped.wait(delay)
        return self.plans[n]

    def _ack(self, stream_id: str, version: int, kind: str) -> None:
        super()._ack(stream_id, version, kind)
        with self._lock:
            self.acknowledged_at.append(time.monotonic())

    def acknowledged_between(self, start: float, end: float) -> int:
        """Commands acknowledged in a time.monotonic() window (e.g. during an outage)."""
        with self._lock:
            return sum(1 for t in self.acknowledged_at if start <= t <= end)


_STARTED: list[SteadyWorkload] = []


def stop_started_workloads() -> None:
    """Stop every workload started so far (a test's teardown: a no-op after a clean finish)."""
    while _STARTED:
        _STARTED.pop().stop()


def wait_for_load(workload: Workload, orders: int, timeout: float = 60) -> None:
    """Block until clients have taken up `orders` orders (the load is under way)."""
    deadline = time.monotonic() + timeout
    while workload.done < orders:
        if time.monotonic() > deadline:
            raise AssertionError(f"load stalled at {workload.done} orders (wanted {orders})")
        if workload.unexpected:
            raise AssertionError("unexpected answers:\n" + "\n".join(workload.unexpected[:5]))
        time.sleep(0.05)


# ------------------------------------------------------------------------------------------
# Processes


def start_relay(system: OrderSystem, name: str) -> ServiceProcess:
    """Another relay on the system's event log and topic, with the system's short lease."""
    return system.runner.relay(system.bootstrap, system.topic, name=name, RELAY_LEASE_SECONDS="3")


def live_group_members(pgid: int) -> list[int]:
    """Pids of the processes (not zombies) in a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def kill_whole_group(service: ServiceProcess, at_least: int = 1) -> int:
    """kill -9 every process of a service (gunicorn: master and workers); how many there were.

    Checks that the group had `at_least` processes and that none survived.
    """
    assert service.pid is not None and service.is_running, f"{service.name} is not running"
    members = live_group_members(service.pid)
    assert len(members) >= at_least, f"{service.name}: only {members} in its process group"
    service.kill()
    deadline = time.monotonic() + 10
    while survivors := live_group_members(service.pid):
        assert time.monotonic() < deadline, f"{service.name}: {survivors} survived kill -9"
        time.sleep(0.05)
    return len(members)


@dataclass
class Freeze:
    """When a `frozen` block stopped its service, and how many SIGSTOPs it took to place."""

    stopped_at: float  # time.monotonic()
    attempts: int


@contextlib.contextmanager
def frozen(service: ServiceProcess, sqlite_file: Path) -> Iterator[Freeze]:
    """SIGSTOP a service's whole process group for the block (a long GC pause, a stalled VM);
    SIGCONT when it ends, also on failure.

    The freeze is placed where the service holds no write transaction on `sqlite_file` (nor
    the flock writers queue on first, see shared/infra/db.py).
    SQLite has one write lock per database, and a process stopped while holding it stalls
    every other writer of that file until it resumes: a relay frozen inside its checkpoint
    stops every command append (503 after the 30 s busy timeout) and keeps the standby from
    taking the lease. That is a different fault from a zombie, and not one the lease can fix.
    """
    assert service.pid is not None and service.is_running, f"{service.name} is not running"
    attempts = 0
    while True:
        attempts += 1
        os.killpg(service.pid, signal.SIGSTOP)
        if not _write_lock_held(sqlite_file):
            break
        os.killpg(service.pid, signal.SIGCONT)
        if attempts == 50:
            raise AssertionError(f"{service.name} never let go of the write lock of {sqlite_file}")
        time.sleep(0.02)
    try:
        yield Freeze(time.monotonic(), attempts)
    finally:
        os.killpg(service.pid, signal.SIGCONT)


def _write_lock_held(sqlite_file: Path) -> bool:
    """Whether another connection holds the database's write lock, or queues for it, now."""
    return _writer_queue_held(sqlite_file) or _sqlite_write_lock_held(sqlite_file)


def _writer_queue_held(sqlite_file: Path) -> bool:
    """Whether a process holds the flock writers take before BEGIN IMMEDIATE (shared/infra/db.py
    names it `<database>.writelock`; no such file, no such queue)."""
    try:
        fd = os.open(f"{sqlite_file}.writelock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops our flock, if we got it
    return False


def _sqlite_write_lock_held(sqlite_file: Path) -> bool:
    """Whether another connection holds SQLite's own write lock right now."""
    conn = sqlite3.connect(sqlite_file, timeout=0.5, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


def sqlite_path(url: str) -> Path:
    """The file of a sqlite:/// URL."""
    return Path(make_url(url).database or "")


def lease_holder_pid(system: OrderSystem) -> int | None:
    """The pid of the relay that holds the lease, from the lease row (owner host:pid:id)."""
    engine = create_engine(system.runner.event_store_url)
    try:
        with engine.connect() as conn:
            owner = conn.execute(
                text("SELECT lease_owner FROM relay_state WHERE topic = :t"), {"t": system.topic}
            ).scalar()
    finally:
        engine.dispose()
    return int(owner.split(":")[1]) if owner else None


def published_position(system: OrderSystem) -> int:
    """The relay's stored position (everything up to it was acknowledged by the broker)."""
    engine = create_engine(system.runner.event_store_url)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                text("SELECT published_position FROM relay_state WHERE topic = :t"),
                {"t": system.topic},
            ).scalar()
    finally:
        engine.dispose()
    return int(value or 0)


def projected_events(system: OrderSystem) -> int:
    """Events the read model holds (the sum of its stream versions)."""
    return sum(system.projected_versions().values())


def kafka_timestamp_boundary() -> int:
    """Epoch ms that records handed to a producer before this call are stamped below, and
    records handed over after it return are stamped at or above."""
    boundary = int(time.time() * 1000) + 1
    while time.time() * 1000 < boundary:
        time.sleep(0.0005)
    return boundary


def copies_sent_since(system: OrderSystem, since_ms: int, at_or_below: int) -> list[int]:
    """Log positions <= at_or_below of topic messages handed to a producer at or after since_ms.

    Kafka stamps a record with the wall clock when the producer's send() is called (topic
    timestamps are CreateTime), so this tells who sent what when, after the fact.
    """
    consumer = KafkaConsumer(
        bootstrap_servers=system.bootstrap.split(","), enable_auto_commit=False, group_id=None
    )
    try:
        numbers = consumer.partitions_for_topic(system.topic) or set()
        partitions = [TopicPartition(system.topic, p) for p in sorted(numbers)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        found = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {system.topic} to its end"
            for records in consumer.poll(timeout_ms=1000, max_records=5000).values():
                for record in records:
                    position = json.loads(record.value)["position"]
                    if record.timestamp >= since_ms and position <= at_or_below:
                        found.append(position)
        return sorted(found)
    finally:
        consumer.close()


# ------------------------------------------------------------------------------------------
# The event log's disk


class SmallDisk:
    """A size-limited tmpfs mounted on a folder: a real file system that can run full.

    `fill()` takes every free byte with a filler file, so the next write that needs a new
    block fails with ENOSPC, as on a full disk; `empty()` deletes the filler. Needs the right
    to mount (root with CAP_SYS_ADMIN, as on the developers' and CI's machines).
    """

    FILLER = "filler.bin"

    def __init__(self, path: Path, size_mb: int = 64) -> None:
        self.path = path
        self.size_mb = size_mb
        self.mounted = False

    def mount(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        options = f"size={self.size_mb}m,mode=0755"
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)],
            check=True,
            capture_output=True,
            text=True,
        )
        self.mounted = True

    def unmount(self) -> None:
        if self.mounted:
            # Lazy: a process we failed to stop must not turn teardown into an error.
            subprocess.run(["umount", "-l", str(self.path)], check=False, capture_output=True)
            self.mounted = False

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self) -> None:
        """Take all free space; afterwards free_bytes() is 0."""
        fd = os.open(self.path / self.FILLER, os.O_CREAT | os.O_WRONLY | os.O_APPEND)
        try:
            with contextlib.suppress(OSError):
                os.posix_fallocate(fd, 0, self.free_bytes())
            # Whatever fallocate left (or all of it, where it is not supported).
            chunk = b"\0" * 65536
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, chunk)
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0")
        finally:
            os.close(fd)

    def empty(self) -> None:
        """Give the space back."""
        (self.path / self.FILLER).unlink(missing_ok=True)

    @staticmethod
    def cannot_mount(probe_dir: Path) -> str | None:
        """Why a tmpfs cannot be mounted here, or None if it can."""
        disk = SmallDisk(probe_dir, size_mb=1)
        try:
            disk.mount()
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            return f"cannot mount a tmpfs for the event log (needs CAP_SYS_ADMIN): {detail}"
        disk.unmount()
        return None


@contextlib.contextmanager
def small_disk_or_skip(tmp_path: Path, name: str, size_mb: int) -> Iterator[SmallDisk]:
    """A SmallDisk mounted on tmp_path/name for the block; skips the test, saying why, where
    mounting a tmpfs is not allowed."""
    reason = SmallDisk.cannot_mount(tmp_path / "mount-probe")
    if reason is not None:
        pytest.skip(reason)
    disk = SmallDisk(tmp_path / name, size_mb=size_mb)
    disk.mount()
    try:
        yield disk
    finally:
        disk.unmount()


class SeparateEventLogRunner(ServiceRunner):
    """A ServiceRunner whose event log lives in its own folder (e.g. on a SmallDisk)."""

    def __init__(self, workdir: Path, event_log_dir: Path) -> None:
        self.event_log_dir = event_log_dir
        super().__init__(workdir)

    @property
    def event_store_url(self) -> str:
        return f"sqlite:///{self.event_log_dir / 'events.db'}"
