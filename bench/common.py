"""What every benchmark shares: the machine it ran on, result files, percentiles, work folders.

Each benchmark writes bench/results/<name>.json: {"name", "machine", "params", "results",
"targets"} plus free-form sections; bench/report.py turns those files into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(os.environ.get("BENCH_RESULTS_DIR", REPO_ROOT / "bench" / "results"))


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, Python and SQLite versions, date, commit and current load."""
    cpu_model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    ram_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    return {
        "cpu_model": cpu_model,
        "cores": os.cpu_count(),
        "ram_gib": round(ram_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git_commit(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' (with uncommitted changes)' if dirty else ''}" or "unknown"


class Result:
    """One benchmark's result file, filled in as the benchmark runs."""

    def __init__(self, name: str, params: dict[str, Any], quick: bool) -> None:
        self.name = name
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "name": name,
            "machine": machine_info(),
            "params": {"quick": quick, **params},
            "results": {},
            "targets": [],
            "memory_peak_mib": {},
            "profiles": {},
            "notes": [],
        }

    def target(self, label: str, value: float, goal: str, met: bool) -> None:
        """Record a target (e.g. "append vs raw sqlite3", 0.42, ">= 0.8x", False)."""
        self.data["targets"].append({"label": label, "value": value, "goal": goal, "met": met})
        print(f"  target {label}: {value:g} (goal {goal}) -> {'met' if met else 'MISSED'}")

    def note(self, text: str) -> None:
        self.data["notes"].append(text)
        print(f"  note: {text}")

    def save(self) -> Path:
        self.data["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        self.data["seconds"] = round(time.monotonic() - self.started, 1)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.json"
        path.write_text(json.dumps(self.data, indent=2, sort_keys=False) + "\n")
        print(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")
        return path


def percentiles(
    samples: Sequence[float], points: Sequence[float] = (50, 95, 99)
) -> dict[str, float]:
    """Nearest-rank percentiles of the samples, keyed "p50" etc. (empty dict for no samples)."""
    if not samples:
        return {}
    ordered = sorted(samples)
    result = {}
    for point in points:
        rank = max(1, min(len(ordered), round(point / 100 * len(ordered) + 0.5)))
        result[f"p{point:g}"] = round(ordered[rank - 1], 3)
    result["max"] = round(ordered[-1], 3)
    result["count"] = len(ordered)
    return result


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 3) if denominator else 0.0


@contextmanager
def work_dir(name: str, keep: bool = False) -> Iterator[Path]:
    """A fresh folder on a real disk (not tmpfs: fsync must cost what it costs)."""
    base = os.environ.get("BENCH_WORK_DIR") or None
    path = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=base))
    try:
        yield path
    finally:
        if keep:
            print(f"kept work folder {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def base_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: a trial run")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    return parser


def file_size_mib(*paths: Path) -> float:
    """Total size of the files that exist among `paths`, in MiB."""
    return round(sum(p.stat().st_size for p in paths if p.exists()) / 2**20, 2)


def sqlite_files(db: Path) -> tuple[Path, Path, Path]:
    """The database file and its WAL and shared-memory files."""
    return db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")


def cprofile_summary(run: Any, top: int = 15) -> dict[str, Any]:
    """Profile run() with cProfile; the same shape as services.summarize_stacks' summary."""
    import cProfile
    import pstats

    from bench.services import OUR_PACKAGES, _library_of

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_cc, _nc, tt, _ct, _callers) in entries.values()) or 1.0
    selfs: list[tuple[float, str]] = []
    inclusive: list[tuple[float, str]] = []
    libraries: dict[str, float] = {}
    for (path, _line, func), (_cc, _nc, tottime, cumtime, _callers) in entries.items():
        label = _short_label(path, func)
        selfs.append((tottime, label))
        library = _library_of(path) if path != "~" else "builtins (C)"
        libraries[library] = libraries.get(library, 0.0) + tottime
        if any(pkg in path for pkg in OUR_PACKAGES):
            inclusive.append((cumtime, label))

    def shares(pairs: list[tuple[float, str]]) -> list[list[Any]]:
        return [
            [label, round(100 * t / total, 1)] for t, label in sorted(pairs, reverse=True)[:top]
        ]

    return {
        "profiler": "cProfile",
        "total_s": round(total, 3),
        "self_top_pct": shares(selfs),
        "inclusive_ours_pct": shares(inclusive),
        "self_by_library_pct": shares([(t, lib) for lib, t in libraries.items()]),
    }


def _short_label(path: str, func: str) -> str:
    if path == "~":
        return func  # a C function such as <method 'execute' of 'sqlite3.Cursor' objects>
    for marker in ("site-packages/", "/lib/python3.", str(REPO_ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3.":
                path = path.split("/", 1)[-1]  # drop the minor version: "11/json/..." -> "json/..."
            break
    return f"{path}:{func}"
