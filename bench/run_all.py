"""`make bench`: every benchmark in turn, each in its own process, sharing one local Kafka
broker, then bench/report.py to regenerate docs/benchmarks.md from bench/results/*.json.

    python -m bench            # the full run (about 30 minutes on 2 idle cores)
    python -m bench --quick    # a trial run with small sizes (a few minutes)
    python -m bench --only append,relay
    python -m bench --quick --report-out /tmp/benchmarks.md   # leave docs/ alone
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO_ROOT
from devtools.local_kafka import LocalKafka
from devtools.ports import free_port

# Cheapest first: a failure shows up early. Projector (a million events) last.
BENCHMARKS = (
    "append",
    "concurrent_append",
    "aggregate_load",
    "auth_cost",
    "post_stages",
    "http_commands",
    "pipeline_http",
    "relay",
    "freshness",
    "projector",
    "cluster_scaling",  # starts its own PostgreSQL and 3-broker cluster
)
NEEDS_KAFKA = {"pipeline_http", "relay", "freshness", "projector"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a trial run")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument(
        "--projector-events",
        type=int,
        default=None,
        help="log size of the projector benchmark (default 1,000,000)",
    )
    parser.add_argument(
        "--report-out",
        default=None,
        help="where bench.report writes the page (default docs/benchmarks.md)",
    )
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b in args.only.split(",")]
    started = time.monotonic()
    failed: list[str] = []
    env = dict(os.environ)
    broker = None
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as kafka_dir:
        if NEEDS_KAFKA & set(chosen) and not env.get("BENCH_KAFKA_BOOTSTRAP"):
            broker = LocalKafka(port=free_port(), data_dir=Path(kafka_dir))
            broker.start()
            env["BENCH_KAFKA_BOOTSTRAP"] = broker.bootstrap_servers
            print(f"Kafka ready on {broker.bootstrap_servers}", flush=True)
        try:
            for name in chosen:
                argv_child = [sys.executable, "-m", f"bench.{name}"]
                if args.quick:
                    argv_child.append("--quick")
                if name == "projector" and args.projector_events:
                    argv_child += ["--events", str(args.projector_events)]
                print(f"\n=== {name} ({' '.join(argv_child[2:])})", flush=True)
                began = time.monotonic()
                code = subprocess.run(argv_child, cwd=REPO_ROOT, env=env).returncode
                print(
                    f"=== {name}: {'ok' if code == 0 else f'FAILED ({code})'} in "
                    f"{time.monotonic() - began:.0f}s",
                    flush=True,
                )
                if code != 0:
                    failed.append(name)
        finally:
            if broker is not None:
                broker.stop()
    report = [sys.executable, "-m", "bench.report"]
    if args.report_out:
        report += ["--out", args.report_out]
    subprocess.run(report, cwd=REPO_ROOT, env=env, check=False)
    print(
        f"\nall benchmarks: {time.monotonic() - started:.0f}s"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
