"""`make run-cluster`: the system in its scale-out shape on this one machine, without Docker.

A private PostgreSQL server (Debian's package) in .data/postgres holds the one event log and the
read model; a three-broker KRaft Kafka cluster in .data/kafka-cluster holds the topic with 6
partitions, replication factor 3 and min.insync.replicas=2. Then two command hosts (API and
relay each; the relays share one lease, so one publishes and the other stands by), three
projectors in one consumer group, two query APIs and the operator console
(scripts/cluster_layout.py). "system up" is printed only once every API answers, every broker
answers, a relay holds the lease and every projector has joined the group. Ctrl-C (or SIGTERM)
stops everything: services, then brokers, then PostgreSQL. A service that dies stops the run
with exit code 1; a broker that dies is reported and survived, as the cluster is built to.

Settings (env): POSTGRES_PORT (5433), POSTGRES_DATA_DIR, KAFKA_CLUSTER_PORTS
(19092,19093,19094), KAFKA_CLUSTER_CONTROLLER_PORTS (19192,19193,19194), KAFKA_CLUSTER_DATA_DIR,
COMMAND_API_PORTS (8001,8011), QUERY_API_PORTS (8002,8012), CONSOLE_PORT (8003); the services'
own settings (DATA_DIR, AUTH_MODE, KAFKA_TOPIC, ...) as for `make run`.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy import Engine

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # Run as a file (`python scripts/run_cluster.py`): devtools is not an installed package.
    sys.path.insert(0, str(REPO))

from devtools.kafka_cluster import KafkaCluster  # noqa: E402
from devtools.local_kafka import LocalKafkaError  # noqa: E402
from devtools.local_postgres import (  # noqa: E402
    LocalPostgres,
    LocalPostgresError,
    find_pg_bin,
    install_hint,
    install_server_package,
)
from devtools.processes import ServiceGroup  # noqa: E402
from scripts.cluster_checks import (  # noqa: E402
    brokers_missing,
    group_members,
    lease_holder,
    owner_pid,
    unhealthy_apis,
)
from scripts.cluster_layout import (  # noqa: E402
    CLUSTER_PARTITIONS,
    CLUSTER_REPLICATION_FACTOR,
    PROJECTORS,
    ClusterLayout,
)
from scripts.launch import (  # noqa: E402
    STOP_TIMEOUT_S,
    first_exited,
    first_taken,
    say,
    service_env,
    start_service,
    stop_requested,
    stop_services,
    write_admin_token,
)
from shared.infra.config import Settings  # noqa: E402
from shared.infra.db import create_database_engine  # noqa: E402
from shared.infra.kafka import ensure_topic  # noqa: E402

HEALTH_TIMEOUT_S = 240.0
PROGRESS_EVERY_S = 10.0
EVENT_DATABASE = "orders_events"
READ_MODEL_DATABASE = "orders_read_model"


def _ports(env: Mapping[str, str], name: str, default: str, count: int) -> tuple[int, ...]:
    raw = env.get(name) or default
    parts = raw.split(",")
    if len(parts) != count or not all(part.strip().isdigit() for part in parts):
        raise SystemExit(f"error: {name} must be {count} comma-separated ports, got {raw!r}")
    return tuple(int(part) for part in parts)


def _postgres_bin() -> Path | None:
    """The server binaries; installed with apt-get first when missing and we are root."""
    if find_pg_bin() is None:
        say("PostgreSQL's server binaries are missing; trying apt-get (as root only)")
        install_server_package()
    return find_pg_bin()


def main() -> int:
    """Run everything until interrupted; exit 1 if a service died or the system never came up."""
    stopping = stop_requested()
    env = service_env(os.environ)
    data_dir = Path(env.get("DATA_DIR") or "data")
    pg_port = int(env.get("POSTGRES_PORT") or 5433)
    pg_dir = Path(env.get("POSTGRES_DATA_DIR") or REPO / ".data" / "postgres")
    kafka_dir = Path(env.get("KAFKA_CLUSTER_DATA_DIR") or REPO / ".data" / "kafka-cluster")
    kafka_ports = _ports(env, "KAFKA_CLUSTER_PORTS", "19092,19093,19094", 3)
    controller_ports = _ports(env, "KAFKA_CLUSTER_CONTROLLER_PORTS", "19192,19193,19194", 3)
    layout = ClusterLayout(
        command_api_ports=_ports(env, "COMMAND_API_PORTS", "8001,8011", 2),
        query_api_ports=_ports(env, "QUERY_API_PORTS", "8002,8012", 2),
        console_port=int(env.get("CONSOLE_PORT") or 8003),
        event_store_url=f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/{EVENT_DATABASE}",
        read_model_url=f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}/{READ_MODEL_DATABASE}",
        kafka_bootstrap_servers=",".join(f"127.0.0.1:{port}" for port in kafka_ports),
        data_dir=data_dir,
    )
    api_urls = [*layout.command_urls, *layout.query_urls, layout.console_url]
    taken = first_taken(api_urls)
    if taken is not None:
        say(f"error: something already answers on {taken}; stop it or choose another port")
        return 1
    pg_bin = _postgres_bin()
    if pg_bin is None:
        say(f"error: PostgreSQL is not installed; {install_hint()}, then make run-cluster")
        return 1

    postgres = LocalPostgres(pg_dir, pg_port, pg_bin)
    cluster = KafkaCluster(
        kafka_dir, ports=list(kafka_ports), controller_ports=list(controller_ports)
    )
    services = ServiceGroup(stop_timeout=STOP_TIMEOUT_S, report=say)
    started: list[str] = []
    exit_code = 1
    try:
        exit_code = _run(postgres, cluster, services, layout, env, started, stopping)
    finally:
        if not stop_services(services):
            exit_code = 1
        if "kafka" in started:
            say("stopping the Kafka brokers")
            cluster.stop()
        if "postgres" in started:
            say("stopping PostgreSQL")
            postgres.stop()
    say(f"system stopped (exit code {exit_code})")
    return exit_code


def _run(
    postgres: LocalPostgres,
    cluster: KafkaCluster,
    services: ServiceGroup,
    layout: ClusterLayout,
    env: Mapping[str, str],
    started: list[str],
    stopping: threading.Event,
) -> int:
    """Start PostgreSQL, the brokers and the services (noting each in `started`); supervise."""
    try:
        say(f"starting PostgreSQL on 127.0.0.1:{postgres.port} (log: {postgres.log_path})")
        postgres.start()
        started.append("postgres")
        for database in (EVENT_DATABASE, READ_MODEL_DATABASE):
            postgres.create_database(database)
        say(f"starting 3 Kafka brokers on {cluster.bootstrap_servers} ({cluster.data_dir})")
        # Noted first: a start that fails half-way kills the nodes it started.
        started.append("kafka")
        cluster.start()
        settings = Settings.from_env(layout.shared_env(env))
        ensure_topic(
            cluster.bootstrap_servers,
            settings.kafka_topic,
            CLUSTER_PARTITIONS,
            CLUSTER_REPLICATION_FACTOR,
        )
        cluster.wait_for_topic(settings.kafka_topic)
    except (LocalPostgresError, LocalKafkaError, OSError, AssertionError) as exc:
        say(f"error: {exc}")
        return 1
    if settings.auth_mode == "dev":
        say(f"admin token (scope admin, 12 h): {write_admin_token(layout.shared_env(env))}")
    for spec in layout.services(env):
        if stopping.is_set():
            return 0
        services.add(start_service(spec.name, spec.script, spec.env))
    return _supervise(services, layout, cluster, settings, stopping)


def _supervise(
    services: ServiceGroup,
    layout: ClusterLayout,
    cluster: KafkaCluster,
    settings: Settings,
    stopping: threading.Event,
) -> int:
    """Announce "system up" once everything answers, then watch until a stop or a death."""
    engine = create_database_engine(layout.event_store_url)
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    up = False
    reported_brokers: set[int] = set()
    try:
        while not stopping.is_set():
            if first_exited(services) is not None:
                return 1
            for node in cluster.nodes:
                if not node.is_running and node.node_id not in reported_brokers:
                    say(f"warning: Kafka broker {node.node_id} exited (log {node.log_path})")
                    reported_brokers.add(node.node_id)
            if not up:
                waiting = _waiting_for(services, layout, cluster, settings, engine)
                if not waiting[0]:
                    up = True
                    say(_system_up_line(layout, cluster, waiting[1]))
                elif time.monotonic() >= deadline:
                    say(f"error: not up within {HEALTH_TIMEOUT_S:g}s; waiting for {waiting[0]}")
                    return 1
                elif time.monotonic() >= next_progress:
                    say(f"waiting for {waiting[0]}")
                    next_progress = time.monotonic() + PROGRESS_EVERY_S
            stopping.wait(0.5 if up else 0.3)
        return 0
    finally:
        engine.dispose()


def _waiting_for(
    services: ServiceGroup,
    layout: ClusterLayout,
    cluster: KafkaCluster,
    settings: Settings,
    engine: Engine,
) -> tuple[str, str]:
    """(what is still missing, "" when nothing; the name of the relay holding the lease)."""
    apis = unhealthy_apis([*layout.command_urls, *layout.query_urls, layout.console_url])
    if apis:
        return (f"GET /healthz of {', '.join(apis)}", "")
    brokers = brokers_missing(cluster)
    if brokers:
        return (f"Kafka brokers {brokers}", "")
    holder = lease_holder(engine, settings.kafka_topic)
    if holder is None:
        return ("a relay to take the lease", "")
    state, members = group_members(cluster, settings.kafka_group_id)
    if state != "Stable" or members < PROJECTORS:
        return (f"the projectors to join {settings.kafka_group_id} ({members}/{PROJECTORS})", "")
    pid = owner_pid(holder)
    names = {service.pid: service.name for service in services.services}
    return ("", names.get(pid or -1, holder.owner or "?"))


def _system_up_line(layout: ClusterLayout, cluster: KafkaCluster, relay: str) -> str:
    return (
        f"system up: command APIs {' '.join(layout.command_urls)}  "
        f"query APIs {' '.join(layout.query_urls)}  console {layout.console_url}  "
        f"Kafka {cluster.bootstrap_servers}  relay lease: {relay}  "
        f"projectors: {PROJECTORS} in one group (sign in with the admin token; "
        "Ctrl-C stops everything)"
    )


if __name__ == "__main__":
    sys.exit(main())
