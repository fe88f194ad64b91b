"""Drive a POST endpoint with a real load generator in its own process: wrk when it is
installed (C, cheap on a 2-core machine, exact latency histogram), else locust (pip-installed
with the bench extra). Closed loop with a fixed number of connections, or paced to a rate.
Every request carries the Authorization header given (the services verify bearer tokens).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def available(preferred: str = "auto") -> str:
    """ "wrk" or "locust" ("auto": wrk when installed); asking for a missing wrk stops."""
    if preferred == "wrk":
        require_wrk()
    if preferred in ("wrk", "locust"):
        return preferred
    return "wrk" if shutil.which("wrk") else "locust"


def version(tool: str) -> str:
    if tool == "wrk":
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        text = (out.stdout + out.stderr).strip()
        return text.splitlines()[0].split(" Copyright")[0].strip() if text else "wrk"
    from importlib.metadata import version as package_version

    return f"locust {package_version('locust')}"


def run(
    tool: str,
    url: str,
    body: str,
    connections: int,
    seconds: float,
    rate: float | None = None,
    delay_ms: float | None = None,
    authorization: str = "",
    method: str = "POST",
    order_id_prefix: str = "",
) -> dict[str, Any]:
    """One load run against POST url; requests/s, errors and latency percentiles in ms.
    `authorization`: the Authorization header value every request sends ("" sends none).
    wrk only: `method` "GET" sends bodiless GETs instead; `order_id_prefix` gives each POST
    a new order id starting with it (else the body goes as it is)."""
    if tool == "wrk":
        return _run_wrk(
            url, body, connections, seconds, delay_ms, authorization, method, order_id_prefix
        )
    if method != "POST" or order_id_prefix:
        raise ValueError("only the wrk runner sends GETs or numbered order ids")
    return _run_locust(url, body, connections, seconds, rate, authorization)


def require_wrk() -> None:
    """Stop with what to do when wrk is not installed (benchmarks that need wrk itself)."""
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: `make bench` installs it when run as root; otherwise "
            "`sudo apt-get install -y wrk` (Debian/Ubuntu) or `brew install wrk` (macOS)"
        )


def _run_wrk(
    url: str,
    body: str,
    connections: int,
    seconds: float,
    delay_ms: float | None,
    authorization: str,
    method: str = "POST",
    order_id_prefix: str = "",
) -> dict[str, Any]:
    env = {
        **os.environ,
        "WRK_BODY": body,
        "WRK_DELAY_MS": f"{delay_ms or 0:.3f}",
        "WRK_AUTHORIZATION": authorization,
        "WRK_METHOD": method,
        "WRK_ORDER_ID_PREFIX": order_id_prefix,
    }
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    argv += ["-s", str(HERE / "wrk_post.lua"), url]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 60)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{out.stdout}\n{out.stderr}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    duration_s = raw["duration_us"] / 1e6
    socket_errors = sum(
        raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
    )
    return {
        "requests": raw["requests"],
        "seconds": round(duration_s, 2),
        "rps": round(raw["requests"] / duration_s, 1),
        "errors": raw["status_errors"] + socket_errors,
        "non_2xx": raw["status_errors"],
        "socket_errors": socket_errors,
        "latency_ms": {
            "p50": raw["p50_us"] / 1000,
            "p95": raw["p95_us"] / 1000,
            "p99": raw["p99_us"] / 1000,
            "max": raw["max_us"] / 1000,
            "mean": round(raw["mean_us"] / 1000, 3),
        },
    }


def _run_locust(
    url: str, body: str, users: int, seconds: float, rate: float | None, authorization: str
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-locust-") as folder:
        prefix = str(Path(folder) / "run")
        env = {
            **os.environ,
            "LOCUST_BODY": body,
            "LOCUST_USER_RATE": str((rate or 0) / users),
            "LOCUST_AUTHORIZATION": authorization,
        }
        argv = [str(Path(sys.executable).parent / "locust"), "-f", str(HERE / "locust_post.py")]
        argv += [
            "--headless",
            "-u",
            str(users),
            "-r",
            str(users),
            "-t",
            f"{max(2, round(seconds + 1))}s",
        ]
        argv += ["--host", url.rsplit("/orders", 1)[0], "--csv", prefix, "--only-summary"]
        argv += ["--reset-stats", "--loglevel", "WARNING", "--exit-code-on-error", "0"]
        subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 90)
        with open(f"{prefix}_stats.csv") as stats_file:
            rows = {row["Name"]: row for row in csv.DictReader(stats_file)}
    row = rows["Aggregated"]
    requests = int(row["Request Count"])
    rps = float(row["Requests/s"])
    failures = int(row["Failure Count"])
    return {
        "requests": requests,
        "seconds": round(requests / rps, 2) if rps else 0.0,
        "rps": round(rps, 1),
        "errors": failures,
        "non_2xx": failures,
        "socket_errors": 0,
        "latency_ms": {
            "p50": float(row["50%"]),
            "p95": float(row["95%"]),
            "p99": float(row["99%"]),
            "max": float(row["100%"]),
            "mean": round(float(row["Average Response Time"]), 3),
        },
    }
