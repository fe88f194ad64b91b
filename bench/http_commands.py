"""2. HTTP command throughput and latency: POST /orders on the command API under gunicorn vs a
trivial JSON endpoint (bench.trivial_app) and vs the peer app (bench.peer_app: the same
POST /orders written the straightforward way with the `eventsourcing` library's Application,
its SQLite persistence and Flask), all three served with the same gunicorn configuration.

The servers run at once; a real load generator (wrk, else locust) in its own process loads
one of them at a time, alternating for several rounds, with a fixed number of connections.
Each request places a new order (the body has no order_id; the service picks one). Then the
command API and the peer are each driven at half their measured maximum rate and their
latency reported. py-spy samples the command API's workers in a separate run afterwards.

Authentication is on: the command API runs AUTH_MODE=dev and every request to either server
carries the same admin bearer token (bench/auth.py), so both parse the same bytes. The
trivial endpoint does not verify it: it stays the ceiling of "a Flask endpoint on the same
gunicorn configuration", so the ratio includes the cost of authentication, which
bench/auth_cost.py measures on its own (the token is repeated, so each worker checks its
signature once and then answers from its verified-token cache, as for a real client). The
peer app has no authentication either (a user's app would bring its own), so our/peer
includes our authentication too.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.auth import AUTH_ENV, authorization
from bench.common import Result, base_parser, cprofile_summary, ratio, work_dir
from bench.peer_app import Orders, persistence_env
from bench.services import Profiler, Services, console_script, cpu_usage
from bench.workload import place_order_json
from command_service.adapters.event_store import EventStore
from command_service.http.app import create_app
from devtools.ports import free_port
from shared.http.gunicorn_server import gunicorn_options
from shared.infra.config import Settings
from shared.infra.db import create_database_engine


def deployed_workers() -> int:
    """COMMAND_API_WORKERS as `command-api` would resolve it here (set, or its default)."""
    # The servers get DATA_DIR from us, which only moves the default SQLite file.
    return Settings.from_env({**os.environ, "DATA_DIR": "."}).command_api_workers


def command_synchronous() -> str:
    """EVENT_STORE_SQLITE_SYNCHRONOUS as `command-api` resolves it here (FULL by default)."""
    return Settings.from_env({**os.environ, "DATA_DIR": "."}).sqlite_synchronous


SERVERS = ("command_api", "trivial", "peer")


def start_servers(
    services: Services, folder: Path, workers: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """The command API, the trivial endpoint and the peer app, by name, and their base URLs."""
    EventStore(create_database_engine(f"sqlite:///{folder / 'events.db'}")).create_schema()
    peer_db = str(folder / "peer-events.db")
    Orders(env=persistence_env(peer_db))  # its tables, before two workers race to create them
    command_port, trivial_port, peer_port = free_port(), free_port(), free_port()
    env = {
        "DATA_DIR": str(folder),
        "COMMAND_API_HOST": "127.0.0.1",
        "COMMAND_API_WORKERS": str(workers),
        "LOG_LEVEL": "INFO",
    }
    command_api = services.start(
        "command-api", console_script("command-api"), {**env, "COMMAND_API_PORT": str(command_port)}
    )
    trivial = services.start(
        "trivial-api",
        [sys.executable, "-m", "bench.trivial_server"],
        {**env, "TRIVIAL_API_PORT": str(trivial_port)},
    )
    peer = services.start(
        "peer-api",
        [sys.executable, "-m", "bench.peer_server"],
        {**env, "PEER_API_PORT": str(peer_port), "PEER_SQLITE_DBNAME": peer_db},
    )
    servers = {"command_api": command_api, "trivial": trivial, "peer": peer}
    ports = {"command_api": command_port, "trivial": trivial_port, "peer": peer_port}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    for name, server in servers.items():
        server.wait_http(f"{urls[name]}/healthz")
    return servers, urls


def peer_sqlite_settings(peer_url: str) -> dict[str, Any]:
    """journal_mode and synchronous on the peer's own connection (its /healthz reports them)."""
    with urllib.request.urlopen(f"{peer_url}/healthz", timeout=10) as response:
        return dict(json.load(response)["sqlite"])


def summarize(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """One server's rounds at maximum throughput, combined."""
    requests = sum(o["requests"] for o in outcomes)
    secs = sum(o["seconds"] for o in outcomes)

    def mean(key: str, places: int) -> float:
        return round(sum(o[key] for o in outcomes) / len(outcomes), places)

    return {
        "rps": round(requests / secs, 1),
        "requests": requests,
        "errors": sum(o["errors"] for o in outcomes),
        "server_cores_used": mean("server_cores_used", 2),
        "server_cpu_ms_per_request": mean("server_cpu_ms_per_request", 3),
        "machine_cores_busy": mean("machine_cores_busy", 2),
        "latency_ms_by_round": [o["latency_ms"] for o in outcomes],
        "p99_ms_worst_round": max(o["latency_ms"]["p99"] for o in outcomes),
        "p50_ms_median_round": sorted(o["latency_ms"]["p50"] for o in outcomes)[len(outcomes) // 2],
    }


def paced_run(
    tool: str,
    url: str,
    body: str,
    connections: int,
    rate: float,
    seconds: float,
    auth: str,
) -> dict[str, Any]:
    """A run at about `rate` requests/s (wrk: per-connection pauses, calibrated once)."""
    if tool != "wrk":
        return loadgen.run(tool, url, body, connections, seconds, rate=rate, authorization=auth)
    pause_ms = connections * 1000 / rate
    probe = loadgen.run(tool, url, body, connections, 3, delay_ms=pause_ms, authorization=auth)
    latency_ms = max(0.0, connections * 1000 / max(probe["rps"], 1) - pause_ms)
    pause_ms = max(0.0, connections * 1000 / rate - latency_ms)
    return loadgen.run(tool, url, body, connections, seconds, delay_ms=pause_ms, authorization=auth)


def profile_in_process(folder: Path, body: str, requests: int) -> dict[str, Any]:
    """cProfile of POST /orders through Flask's test client: one thread, no server, no
    contention, so the shares are the CPU cost of our request path alone (authentication
    included: a repeated admin token, verified once, then from the verifier's cache)."""
    data_dir = folder / "in-process"
    settings = Settings.from_env({**AUTH_ENV, "DATA_DIR": str(data_dir), "LOG_LEVEL": "WARNING"})
    client = create_app(settings).test_client()
    headers = {"Authorization": authorization(data_dir)}
    for _ in range(50):  # warm-up: statement caches, imports, the token cache
        client.post("/orders", data=body, content_type="application/json", headers=headers)

    def post_all() -> None:
        for _ in range(requests):
            response = client.post(
                "/orders", data=body, content_type="application/json", headers=headers
            )
            assert response.status_code == 201, response.get_data(as_text=True)

    started = time.perf_counter()
    post_all()
    plain_us = 1e6 * (time.perf_counter() - started) / requests
    summary = cprofile_summary(post_all)
    summary["us_per_request_without_profiler"] = round(plain_us, 1)
    summary["us_per_request_under_cprofile"] = round(1e6 * summary["total_s"] / requests, 1)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--loadgen", choices=["auto", "wrk", "locust"], default="auto")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="COMMAND_API_WORKERS for all three servers (default: what the command API would use)",
    )
    args = parser.parse_args(argv)
    workers = args.workers if args.workers is not None else deployed_workers()
    origin = "--workers" if args.workers is not None else "the command API's default"
    print(f"  gunicorn workers: {workers} for all three servers ({origin})")
    tool = loadgen.available(args.loadgen)
    rounds, seconds, half_seconds = (2, 5, 8) if args.quick else (3, 15, 30)
    result = Result(
        "http_commands",
        {
            "load_generator": loadgen.version(tool),
            "connections": args.connections,
            "gunicorn_workers": workers,
            "gunicorn_workers_from": origin,
            "gunicorn_threads_per_worker": gunicorn_options("127.0.0.1", 0, workers)["threads"],
            "rounds": rounds,
            "seconds_per_round": seconds,
            "half_rate_seconds": half_seconds,
            "request": "POST /orders, new order, 1-3 lines",
            "auth": "AUTH_MODE=dev; every request to every server sends one admin bearer "
            "token; only the command API verifies it (cached after each worker's first check)",
            "peer": "bench/peer_app.py: eventsourcing "
            f"{package_version('eventsourcing')} Application + Flask + marshmallow, "
            "PERSISTENCE_MODULE=eventsourcing.sqlite, no authentication",
        },
        args.quick,
    )
    body = place_order_json()
    with work_dir("http", args.keep) as folder, Services(folder) as services:
        servers, urls = start_servers(services, folder, workers)
        command_api = servers["command_api"]
        peer_sqlite = peer_sqlite_settings(urls["peer"])
        ours_sqlite = {"journal_mode": "wal", "synchronous": command_synchronous()}
        result.data["params"]["peer_sqlite"] = peer_sqlite
        result.data["params"]["command_api_sqlite"] = ours_sqlite
        result.data["params"]["same_durability"] = peer_sqlite == ours_sqlite
        print(f"  peer SQLite: {peer_sqlite}; command API: {ours_sqlite}")
        if peer_sqlite != ours_sqlite:
            result.note(
                f"the peer's SQLite runs {peer_sqlite}, the command API {ours_sqlite}: the "
                "peer ratio compares different durability"
            )
        auth = authorization(folder)
        targets = {name: f"{urls[name]}/orders" for name in SERVERS}
        for url in targets.values():  # warm-up
            warm = loadgen.run(tool, url, body, args.connections, 2, authorization=auth)
            if warm["requests"] and warm["non_2xx"] == warm["requests"]:
                raise SystemExit(f"every warm-up request to {url} failed (refused token?)")
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for round_no in range(rounds):
            order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
            for name in order:
                server = servers[name]
                outcome, usage = cpu_usage(
                    [server],
                    lambda url=targets[name]: loadgen.run(
                        tool, url, body, args.connections, seconds, authorization=auth
                    ),
                )
                served_cores = usage[f"{server.name}_cores"]
                outcome["server_cores_used"] = served_cores
                outcome["machine_cores_busy"] = usage["machine_cores_busy"]
                outcome["server_cpu_ms_per_request"] = round(
                    1000 * served_cores / max(outcome["rps"], 1e-9), 3
                )
                runs[name].append(outcome)
                print(
                    f"  round {round_no + 1} {name:12s} {outcome['rps']:8.1f} req/s  p99 "
                    f"{outcome['latency_ms']['p99']:.1f} ms  errors {outcome['errors']}  "
                    f"server {served_cores} cores ({outcome['server_cpu_ms_per_request']} "
                    f"ms CPU/request), machine {usage['machine_cores_busy']} cores busy"
                )
                command_api.sample_memory()
        summary: dict[str, Any] = {name: summarize(outcomes) for name, outcomes in runs.items()}
        http_ratio = ratio(summary["command_api"]["rps"], summary["trivial"]["rps"])
        summary["ratio_command_vs_trivial"] = http_ratio
        result.data["results"]["max_throughput"] = summary
        print(
            f"  command API {summary['command_api']['rps']} req/s vs trivial "
            f"{summary['trivial']['rps']} req/s: {http_ratio}x"
        )
        peer_ratio = ratio(summary["command_api"]["rps"], summary["peer"]["rps"])
        summary["ratio_command_vs_peer"] = peer_ratio
        print(
            f"  command API {summary['command_api']['rps']} req/s vs the eventsourcing + Flask "
            f"peer {summary['peer']['rps']} req/s: {peer_ratio}x (peer errors "
            f"{summary['peer']['errors']})"
        )
        result.target("HTTP commands vs trivial endpoint", http_ratio, ">= 0.6x", http_ratio >= 0.6)
        result.target(
            "POST /orders vs the eventsourcing + Flask peer app",
            peer_ratio,
            ">= 1.5x",
            peer_ratio >= 1.5,
        )
        errors = summary["command_api"]["errors"]
        result.target("HTTP errors at max throughput", errors, "0", errors == 0)

        half_rate = summary["command_api"]["rps"] / 2
        half, usage = cpu_usage(
            [command_api],
            lambda: paced_run(
                tool, targets["command_api"], body, args.connections, half_rate, half_seconds, auth
            ),
        )
        half.update(usage)
        half["target_rps"] = round(half_rate, 1)
        result.data["results"]["half_max_rate"] = half
        p99 = half["latency_ms"]["p99"]
        print(
            f"  at half max ({half_rate:.0f}/s target, {half['rps']}/s achieved): p50 "
            f"{half['latency_ms']['p50']} ms p95 {half['latency_ms']['p95']} ms p99 {p99} ms, "
            f"errors {half['errors']}"
        )
        result.target("HTTP p99 at half max rate (ms)", p99, "< 25 ms", p99 < 25)
        result.target("HTTP errors at half max rate", half["errors"], "0", half["errors"] == 0)
        peer_half_rate = summary["peer"]["rps"] / 2
        peer_half, usage = cpu_usage(
            [servers["peer"]],
            lambda: paced_run(
                tool, targets["peer"], body, args.connections, peer_half_rate, half_seconds, auth
            ),
        )
        peer_half.update(usage)
        peer_half["target_rps"] = round(peer_half_rate, 1)
        result.data["results"]["peer_half_max_rate"] = peer_half
        print(
            f"  peer at half its max ({peer_half_rate:.0f}/s target, {peer_half['rps']}/s "
            f"achieved): p50 {peer_half['latency_ms']['p50']} ms p99 "
            f"{peer_half['latency_ms']['p99']} ms, errors {peer_half['errors']}"
        )
        for server in servers.values():
            server.sample_memory()

        profile_seconds = 5 if args.quick else 10
        profiler = Profiler(command_api.pid, folder / "command-api.pyspy", profile_seconds)
        loadgen.run(
            tool,
            targets["command_api"],
            body,
            args.connections,
            profile_seconds + 1,
            authorization=auth,
        )
        result.data["profiles"]["command_api_under_max_load (py-spy, workers)"] = profiler.finish()
        result.data["profiles"]["POST /orders in-process (cProfile, Flask test client)"] = (
            profile_in_process(folder, body, 300 if args.quick else 2000)
        )
        result.data["memory_peak_mib"] = {
            name: mib
            for server in servers.values()
            for name, mib in server.peak_memory_mib().items()
        }
    result.save()


if __name__ == "__main__":
    main()
