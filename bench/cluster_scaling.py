"""9. The scale-out shape: commands/s with 1 and 2 command hosts on one PostgreSQL event log,
projector events/s with 1 and 3 projectors in one consumer group into a PostgreSQL read model.

Started with the project's own devtools, as `make run-cluster` does: a private PostgreSQL
(devtools/local_postgres.py) and three KRaft brokers (devtools/kafka_cluster.py, topic with
6 partitions, replication factor 3, min.insync.replicas=2). Authentication is dev mode on the
work folder (bench.services.Services), every request carries an admin token (bench.auth).

- commands: `command-api` (1 gunicorn worker each, as in scripts/cluster_layout.py) on
  EVENT_STORE_URL postgresql+psycopg://...; the load generator (bench.loadgen: wrk, else
  locust) places new orders with a fixed number of connections, first all against host 1,
  then split evenly over hosts 1 and 2 (same total connections, same log). No relay runs
  during this part: it measures the command hosts and the log, not publishing.
- projectors: a separate log is filled (bench.workload) and published to a fresh topic with the
  relay's producer settings and message format (bench.projector.publish_log); then 1, and
  afterwards 3, `query-projector` processes on a fresh group and a fresh read model database,
  timed until their stored positions (projector_positions) cover the whole topic.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench import loadgen
from bench.auth import authorization
from bench.common import Result, base_parser, ratio, work_dir
from bench.projector import publish_log
from bench.services import Service, Services, console_script, cpu_usage
from bench.workload import fill_log, place_order_json
from command_service.adapters.event_store import EventStore
from devtools.kafka_cluster import KafkaCluster
from devtools.local_postgres import LocalPostgres
from devtools.ports import free_port
from query_service.read_model.tables import create_read_model_engine, create_read_model_schema
from scripts.cluster_layout import CLUSTER_PARTITIONS, CLUSTER_REPLICATION_FACTOR
from shared.infra import kafka as kafka_clients
from shared.infra.config import Settings
from shared.infra.db import create_database_engine

COMMAND_DATABASE = "bench_events"
PROJECTOR_LOG_DATABASE = "bench_projector_log"


def start_command_api(services: Services, name: str, event_store_url: str) -> tuple[Service, str]:
    """One command host (1 worker, as in the cluster layout) on the PostgreSQL log; its URL."""
    port = free_port()
    env = {
        "EVENT_STORE_URL": event_store_url,
        "COMMAND_API_HOST": "127.0.0.1",
        "COMMAND_API_PORT": str(port),
        "COMMAND_API_WORKERS": "1",
        "LOG_LEVEL": "WARNING",
    }
    api = services.start(name, console_script("command-api"), env)
    url = f"http://127.0.0.1:{port}"
    api.wait_http(f"{url}/healthz")
    return api, url


def load_hosts(
    tool: str, urls: list[str], apis: list[Service], connections: int, seconds: float, auth: str
) -> dict[str, Any]:
    """POST /orders on every host at once (connections split evenly); summed requests/s."""
    body = place_order_json()
    per_host = max(1, connections // len(urls))
    outcomes: list[dict[str, Any]] = [{} for _ in urls]

    def drive(index: int) -> None:
        outcomes[index] = loadgen.run(
            tool, f"{urls[index]}/orders", body, per_host, seconds, authorization=auth
        )

    def run_all() -> None:
        threads = [threading.Thread(target=drive, args=(i,)) for i in range(len(urls))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    _, usage = cpu_usage(apis, run_all)
    requests = sum(o["requests"] for o in outcomes)
    longest = max(o["seconds"] for o in outcomes) or 1.0
    return {
        "hosts": len(urls),
        "connections": per_host * len(urls),
        "requests": requests,
        "rps": round(sum(o["rps"] for o in outcomes), 1),
        "errors": sum(o["errors"] for o in outcomes),
        "seconds": longest,
        "p99_ms_worst_host": max(o["latency_ms"]["p99"] for o in outcomes),
        "p50_ms_by_host": [o["latency_ms"]["p50"] for o in outcomes],
        "command_api_cores": {k: v for k, v in usage.items() if k.startswith("command-api")},
        "machine_cores_busy": usage["machine_cores_busy"],
    }


def commands_part(
    services: Services, postgres: LocalPostgres, folder: Path, args: Any, result: Result
) -> str:
    """Commands/s with 1 then 2 hosts; returns host 1's URL (the projectors' gap-repair source)."""
    url = postgres.url(COMMAND_DATABASE)
    EventStore(create_database_engine(url)).create_schema()  # before two hosts race to
    tool = loadgen.available()
    result.data["params"]["load_generator"] = loadgen.version(tool)
    auth = authorization(folder)
    api1, url1 = start_command_api(services, "command-api-1", url)
    load_hosts(tool, [url1], [api1], args.connections, 1, auth)  # warm-up: connections, caches
    runs: dict[str, Any] = {}
    print(f"  1 host, {args.connections} connections, {args.seconds}s")
    runs["1_host"] = load_hosts(tool, [url1], [api1], args.connections, args.seconds, auth)
    print(f"    {runs['1_host']['rps']:,} commands/s, {runs['1_host']['errors']} errors")
    api2, url2 = start_command_api(services, "command-api-2", url)
    load_hosts(tool, [url2], [api2], args.connections, 1, auth)
    print(f"  2 hosts, {args.connections} connections split, {args.seconds}s")
    runs["2_hosts"] = load_hosts(
        tool, [url1, url2], [api1, api2], args.connections, args.seconds, auth
    )
    print(f"    {runs['2_hosts']['rps']:,} commands/s, {runs['2_hosts']['errors']} errors")
    runs["2_hosts_vs_1"] = ratio(runs["2_hosts"]["rps"], runs["1_host"]["rps"])
    result.data["results"]["commands"] = runs
    api2.stop()
    return url1


def consumed(read_model_url: str, topic: str) -> int:
    """Messages the projectors have committed with the read model (sum of next offsets)."""
    import psycopg

    conninfo = read_model_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(next_offset), 0) FROM projector_positions WHERE topic = %s",
                (topic,),
            ).fetchone()
    except psycopg.Error:
        return 0
    return int(row[0]) if row else 0


def projectors_run(
    services: Services,
    postgres: LocalPostgres,
    bootstrap: str,
    topic: str,
    total: int,
    count: int,
    command_url: str,
) -> dict[str, Any]:
    """`count` projectors in one fresh group into a fresh read model, timed until caught up."""
    database = f"bench_read_model_{count}"
    postgres.create_database(database)
    read_model_url = postgres.url(database)
    # Created once here: three projectors starting at once would race to create it.
    create_read_model_schema(create_read_model_engine(read_model_url))
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_TOPIC": topic,
        "KAFKA_TOPIC_PARTITIONS": str(CLUSTER_PARTITIONS),
        "KAFKA_REPLICATION_FACTOR": str(CLUSTER_REPLICATION_FACTOR),
        "KAFKA_GROUP_ID": f"bench-cluster-{uuid.uuid4().hex[:8]}",
        "READ_MODEL_URL": read_model_url,
        "COMMAND_API_URL": command_url,
        "LOG_LEVEL": "WARNING",
    }
    started = time.monotonic()
    projectors = [
        services.start(f"query-projector-{count}-{n}", console_script("query-projector"), env)
        for n in range(1, count + 1)
    ]
    first: tuple[float, int] | None = None

    def wait_done() -> float:
        nonlocal first
        while True:
            done = consumed(read_model_url, topic)
            now = time.monotonic()
            if done and first is None:
                first = (now, done)
            if done >= total:
                return now
            for projector in projectors:
                if not projector.is_running:
                    raise RuntimeError(f"{projector.name} exited:\n{projector.tail()}")
            time.sleep(0.2)

    finished, usage = cpu_usage(projectors, wait_done)
    outcome: dict[str, Any] = {
        "projectors": count,
        "events": total,
        "seconds_from_process_start": round(finished - started, 1),
        "events_per_s_from_process_start": round(total / (finished - started)),
        "projector_cores": {k: v for k, v in usage.items() if k.startswith("query-projector")},
        "machine_cores_busy": usage["machine_cores_busy"],
    }
    if first is not None and finished > first[0]:
        outcome["first_commit_seconds"] = round(first[0] - started, 1)
        outcome["events_per_s_after_first_commit"] = round(
            (total - first[1]) / (finished - first[0])
        )
    for projector in projectors:
        projector.stop()
    return outcome


def projectors_part(
    services: Services,
    postgres: LocalPostgres,
    cluster: KafkaCluster,
    command_url: str,
    args: Any,
    result: Result,
) -> None:
    """Fill a log, publish it to a fresh replicated topic, then 1 and 3 projectors on it."""
    postgres.create_database(PROJECTOR_LOG_DATABASE)
    store = EventStore(create_database_engine(postgres.url(PROJECTOR_LOG_DATABASE)))
    store.create_schema()
    fill_log(store, args.events)
    topic = f"bench-cluster-{uuid.uuid4().hex[:8]}"
    bootstrap = cluster.bootstrap_servers
    kafka_clients.ensure_topic(bootstrap, topic, CLUSTER_PARTITIONS, CLUSTER_REPLICATION_FACTOR)
    cluster.wait_for_topic(topic)
    settings = Settings.from_env(
        {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "KAFKA_TOPIC_PARTITIONS": str(CLUSTER_PARTITIONS),
            "KAFKA_REPLICATION_FACTOR": str(CLUSTER_REPLICATION_FACTOR),
        }
    )
    total = publish_log(store, settings, topic)
    runs: dict[str, Any] = {}
    for count in (1, 3):
        print(f"  {count} projector(s) on {total:,} events")
        run = projectors_run(services, postgres, bootstrap, topic, total, count, command_url)
        print(f"    {run['events_per_s_from_process_start']:,} events/s from process start")
        runs[f"{count}_projectors"] = run
    runs["3_projectors_vs_1"] = ratio(
        runs["3_projectors"]["events_per_s_from_process_start"],
        runs["1_projectors"]["events_per_s_from_process_start"],
    )
    result.data["results"]["projectors"] = runs


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__)
    parser.add_argument("--seconds", type=float, default=None, help="each load run (10; quick 3)")
    parser.add_argument("--connections", type=int, default=8, help="total load connections")
    parser.add_argument("--events", type=int, default=None, help="projector log (100,000)")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (3.0 if args.quick else 10.0)
    args.events = args.events or (5_000 if args.quick else 100_000)
    result = Result(
        "cluster_scaling",
        {
            "seconds": args.seconds,
            "connections": args.connections,
            "events": args.events,
            "partitions": CLUSTER_PARTITIONS,
            "replication_factor": CLUSTER_REPLICATION_FACTOR,
            "command_api_workers": 1,
        },
        args.quick,
    )
    with work_dir("cluster", args.keep) as folder:
        folder.chmod(0o711)  # as root, PostgreSQL runs as `postgres`, which must reach its folder
        postgres = LocalPostgres(folder / "postgres", free_port())
        cluster = KafkaCluster(folder / "kafka")
        services = Services(folder)
        try:
            postgres.start()
            postgres.create_database(COMMAND_DATABASE)
            started = time.monotonic()
            cluster.start()
            print(f"  3 brokers on {cluster.bootstrap_servers}, {time.monotonic() - started:.0f}s")
            print("commands: 1 and 2 command hosts on one PostgreSQL log")
            command_url = commands_part(services, postgres, folder, args, result)
            print("projectors: 1 and 3 in one group into a PostgreSQL read model")
            projectors_part(services, postgres, cluster, command_url, args, result)
        finally:
            services.stop_all()
            try:
                cluster.stop()
            except Exception:
                cluster.kill()
                raise
            finally:
                postgres.stop()
    result.save()


if __name__ == "__main__":
    main()
