"""Where a process writes its Prometheus samples: a directory of its own under its side's root.

prometheus_client's multiprocess mode has each process write mmap files into the directory
named by PROMETHEUS_MULTIPROC_DIR, and a scrape merges them. Several kinds of process share a
side's root (the command API's gunicorn workers and the relay; the query API's workers and the
projector), and they start and die independently, so each one claims `<root>/<kind>-<pid>/`
and holds an exclusive lock on `<root>/<kind>-<pid>.lock` for its lifetime (gunicorn workers
inherit the master's). A starting process removes every directory whose lock is free: its
owner is dead, whatever the pid has been reused for since. Live processes' files are never
touched, and counters of dead gunicorn workers stay while their master lives.

This module must not import prometheus_client: the variable has to be set before it is.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import IO

log = logging.getLogger("shared.metrics_dir")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LOCK_SUFFIX = ".lock"

# Claimed directories and their open lock files; a lock lasts as long as its file is open.
_claims: dict[Path, IO[bytes]] = {}


class MetricsDirError(RuntimeError):
    """Multiprocess metrics cannot be set up the way this process needs them."""


def claim_metrics_dir(side_root: Path, kind: str) -> Path:
    """Make `<side_root>/<kind>-<pid>/` this process's fresh sample directory and export it.

    Call before anything imports prometheus_client. Idempotent within a process.
    """
    directory = (side_root / f"{kind}-{os.getpid()}").resolve()
    if directory in _claims:
        return directory
    if "prometheus_client" in sys.modules:
        raise MetricsDirError(
            "prometheus_client was imported before the metrics directory was claimed; "
            "it would keep its samples in this process only"
        )
    side_root.mkdir(parents=True, exist_ok=True)
    _claims[directory] = _lock(directory.with_name(directory.name + _LOCK_SUFFIX))
    # The directory may be left from a dead process that had our pid: start from nothing.
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    removed = remove_dead_process_dirs(side_root)
    os.environ[MULTIPROC_ENV] = str(directory)
    log.info(
        "metrics directory claimed",
        extra={"metrics_dir": str(directory), "removed_dead": removed},
    )
    return directory


def remove_dead_process_dirs(side_root: Path) -> list[str]:
    """Delete the sample directories (and lock files) of processes that are gone; their names."""
    removed: list[str] = []
    for lock_path in sorted(side_root.glob(f"*{_LOCK_SUFFIX}")):
        directory = lock_path.with_name(lock_path.name.removesuffix(_LOCK_SUFFIX))
        if directory.resolve() in _claims:
            continue
        try:
            lock_file = lock_path.open("rb")
        except FileNotFoundError:
            continue  # another starting process removed it first
        with lock_file:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its owner is alive
            shutil.rmtree(directory, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
            removed.append(directory.name)
    # A directory without a lock file has no owner that could still write to it.
    for directory in side_root.iterdir():
        lock_path = directory.with_name(directory.name + _LOCK_SUFFIX)
        if directory.is_dir() and not lock_path.exists() and directory.resolve() not in _claims:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory.name)
    return removed


def process_sample_dirs(side_root: Path) -> list[Path]:
    """Every process's sample directory under a side's root (what a scrape merges)."""
    if not side_root.is_dir():
        return []
    return sorted(path for path in side_root.iterdir() if path.is_dir())


def _lock(lock_path: Path) -> IO[bytes]:
    """Open and lock `lock_path`, making sure the file locked is the one at that path."""
    for _ in range(10):
        lock_file = lock_path.open("ab")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.close()
            raise MetricsDirError(f"{lock_path} is held by a live process") from None
        # A cleaner may have unlinked the file between our open and our lock: then the lock
        # guards nothing anyone can see, so take a new file.
        try:
            if os.stat(lock_path).st_ino == os.fstat(lock_file.fileno()).st_ino:
                return lock_file
        except FileNotFoundError:
            pass
        lock_file.close()
    raise MetricsDirError(f"could not lock {lock_path}")
