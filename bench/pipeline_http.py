"""2b. The whole pipeline running: POST /orders vs GET /healthz on the same command API, wrk.

The four processes of `make run` run (command API, relay, query API, projector) against a
local Kafka broker, wired as `make run` wires them and as bench/freshness.py starts them, with
authentication on (AUTH_MODE=dev, an admin bearer token on every request). wrk, in its own
process, with 16 connections, alternates rounds of:

- POST /orders, each request a new order with its own order id (bench/wrk_post.lua with
  WRK_ORDER_ID_PREFIX), so the relay publishes and the projector applies every one of them;
- GET /healthz on the same command API (public, answers {"status": "ok"}), the ceiling of
  that server on this machine with the same processes around it.

POST / healthz is the ratio the issue's target is about. The relay and projector keep
working on the POSTs' events during the healthz rounds too (a backlog drains), so both
endpoints share the machine with them. Reported besides: the cores each process used during
each kind of round, and how long after the last POST round the read model held every order.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.common import Result, base_parser, ratio, work_dir
from bench.freshness import start_system, wait_pipeline_ready
from bench.services import Profiler, Service, Services, cpu_usage, kafka_broker
from bench.workload import place_order_json

PROCESSES = ("command_api", "relay", "query_api", "projector")


def read_model_orders(read_model: Path) -> int:
    """Order rows in the read model (0 before the projector made its tables)."""
    try:
        with sqlite3.connect(f"file:{read_model}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def wait_caught_up(read_model: Path, orders: int, timeout: float) -> float | None:
    """Seconds until the read model holds `orders` orders (None if not within timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if read_model_orders(read_model) >= orders:
            return round(time.monotonic() - started, 2)
        time.sleep(0.05)
    return None


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    requests = sum(o["requests"] for o in outcomes)
    secs = sum(o["seconds"] for o in outcomes)
    cores: dict[str, float] = {}
    for key in outcomes[0]["cores"]:
        cores[key] = round(sum(o["cores"][key] for o in outcomes) / len(outcomes), 2)
    return {
        "rps": round(requests / secs, 1),
        "requests": requests,
        "errors": sum(o["errors"] for o in outcomes),
        "rps_by_round": [o["rps"] for o in outcomes],
        "latency_ms_by_round": [o["latency_ms"] for o in outcomes],
        "p99_ms_worst_round": max(o["latency_ms"]["p99"] for o in outcomes),
        "cores_used": cores,
    }


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=None, help="per round (15; quick 5)")
    parser.add_argument("--rounds", type=int, default=None, help="per endpoint (3; quick 2)")
    args = parser.parse_args(argv)
    loadgen.require_wrk()
    seconds = args.seconds or (5 if args.quick else 15)
    rounds = args.rounds or (2 if args.quick else 3)
    result = Result(
        "pipeline_http",
        {
            "load_generator": loadgen.version("wrk"),
            "connections": args.connections,
            "rounds": rounds,
            "seconds_per_round": seconds,
            "processes": "command-api, command-relay, query-api, query-projector (as make run), "
            "local Kafka",
            "request": "POST /orders, a new order id per request, 1-3 lines; GET /healthz",
            "auth": "AUTH_MODE=dev; every request sends one admin bearer token (GET /healthz is "
            "public and does not verify it)",
            "query_api_load": "none besides the projector's writes (nobody reads)",
        },
        args.quick,
    )
    body = place_order_json()
    run_tag = uuid.uuid4().hex[:6]
    with (
        work_dir("pipeline-http", args.keep) as folder,
        kafka_broker(folder) as bootstrap,
        Services(folder) as services,
    ):
        system = start_system(services, folder, bootstrap)
        wait_pipeline_ready(system)
        auth = system["authorization"]
        watched: list[Service] = [system[name] for name in PROCESSES]
        urls = {
            "post_orders": f"{system['command_url']}/orders",
            "healthz": f"{system['command_url']}/healthz",
        }

        def load(endpoint: str, label: str, secs: float) -> dict[str, Any]:
            if endpoint == "healthz":
                return loadgen.run(
                    "wrk",
                    urls[endpoint],
                    "",
                    args.connections,
                    secs,
                    authorization=auth,
                    method="GET",
                )
            prefix = f"pl-{run_tag}-{label}-"
            return loadgen.run(
                "wrk",
                urls[endpoint],
                body,
                args.connections,
                secs,
                authorization=auth,
                order_id_prefix=prefix,
            )

        # Orders answered 201 as wrk counts them: requests still in flight when a run ends are
        # served but not counted, so this is a lower bound of what the read model must hold.
        placed = read_model_orders(system["read_model"])  # the warm-up order
        for endpoint in urls:  # warm-up: connections, statement caches, the token cache
            warm = load(endpoint, "warm", 2)
            if warm["requests"] and warm["non_2xx"] == warm["requests"]:
                raise SystemExit(f"every warm-up request to {urls[endpoint]} failed")
            if endpoint == "post_orders":
                placed += warm["requests"] - warm["non_2xx"]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
        for round_no in range(rounds):
            order = list(urls) if round_no % 2 == 0 else list(reversed(urls))
            for endpoint in order:
                outcome, usage = cpu_usage(
                    watched, lambda e=endpoint, r=round_no: load(e, f"r{r}", seconds)
                )
                outcome["cores"] = usage
                runs[endpoint].append(outcome)
                if endpoint == "post_orders":
                    placed += outcome["requests"] - outcome["non_2xx"]
                busy = ", ".join(
                    f"{name} {usage[f'{system[name].name}_cores']}" for name in PROCESSES
                )
                print(
                    f"  round {round_no + 1} {endpoint:11s} {outcome['rps']:8.1f} req/s  p99 "
                    f"{outcome['latency_ms']['p99']:.1f} ms  errors {outcome['errors']}  cores: "
                    f"{busy}, machine {usage['machine_cores_busy']}"
                )
                for service in watched:
                    service.sample_memory()
        caught_up_s = wait_caught_up(system["read_model"], placed, 120)
        summary: dict[str, Any] = {name: summarize(outcomes) for name, outcomes in runs.items()}
        post, health = summary["post_orders"], summary["healthz"]
        post_vs_health = ratio(post["rps"], health["rps"])
        summary["ratio_post_vs_healthz"] = post_vs_health
        summary["orders_placed"] = placed
        summary["read_model_caught_up_s_after_last_round"] = caught_up_s
        summary["read_model_orders_at_end"] = read_model_orders(system["read_model"])
        result.data["results"]["max_throughput"] = summary
        print(
            f"  POST /orders {post['rps']} req/s vs GET /healthz {health['rps']} req/s: "
            f"{post_vs_health}x; read model caught up "
            + (f"{caught_up_s} s after the last round" if caught_up_s is not None else "NEVER")
            + f" ({summary['read_model_orders_at_end']:,} of {placed:,} orders)"
        )
        result.target(
            "whole pipeline, POST /orders vs GET /healthz (wrk -c16)",
            post_vs_health,
            ">= 0.4x",
            post_vs_health >= 0.4,
        )
        result.target(
            "whole pipeline, POST /orders errors", post["errors"], "0", post["errors"] == 0
        )
        if caught_up_s is None:
            result.note(f"the read model did not hold all {placed} orders within 120 s")

        profile_seconds = 5 if args.quick else 10
        profiler = Profiler(
            system["command_api"].pid, folder / "command-api.pyspy", profile_seconds
        )
        load("post_orders", "profile", profile_seconds + 1)
        result.data["profiles"]["command_api, whole pipeline running (py-spy, workers)"] = (
            profiler.finish()
        )
        result.data["memory_peak_mib"] = {
            name: mib for service in watched for name, mib in service.peak_memory_mib().items()
        }
    result.save()


if __name__ == "__main__":
    main()
