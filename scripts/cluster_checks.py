"""What "system up" means for `make run-cluster`: each part answers, as an operator would see it.

Every API answers GET /healthz, every broker answers a metadata request and lists itself, one
relay holds the lease in the event log's database, and the projectors' consumer group is
Stable with every projector a member. Each check returns what is still missing, so the
supervisor can say what it waits for.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from command_service.outbox.lease import LeaseHolder, relay_state_table
from devtools.kafka_cluster import KafkaCluster
from devtools.waiting import http_ok


def unhealthy_apis(base_urls: list[str]) -> list[str]:
    """The base URLs whose GET /healthz does not answer 200."""
    return [url for url in base_urls if not http_ok(f"{url}/healthz", timeout=2.0)]


def lease_holder(engine: Engine, topic: str) -> LeaseHolder | None:
    """The relay holding the topic's lease now, or None (nobody, expired or no table yet)."""
    table = relay_state_table
    try:
        with engine.connect() as conn:
            row = conn.execute(
                select(table.c.lease_owner, table.c.lease_expires_at).where(table.c.topic == topic)
            ).first()
    except SQLAlchemyError:  # the relays create the table; before that there is no holder
        return None
    if row is None or row[0] is None or row[1] is None:
        return None
    holder = LeaseHolder(row[0], row[1])
    expires_at = holder.expires_at
    assert expires_at is not None
    return holder if expires_at > datetime.now(UTC) else None


def owner_pid(holder: LeaseHolder) -> int | None:
    """The pid in a lease owner's name (host:pid:random, see outbox/lease.py:new_owner_id)."""
    parts = (holder.owner or "").rsplit(":", 2)
    return int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None


def group_members(cluster: KafkaCluster, group_id: str) -> tuple[str, int]:
    """The consumer group's state and member count ("Dead", 0 when it does not exist yet)."""
    try:
        with cluster.admin("run-cluster-probe") as admin:
            groups = admin.describe_groups([group_id])
    except Exception:  # no coordinator yet, a node still starting: not joined yet
        return ("Unknown", 0)
    group = groups.get(group_id) or {}
    return (str(group.get("group_state") or "Unknown"), len(group.get("members") or []))


def brokers_missing(cluster: KafkaCluster) -> list[int]:
    """The node ids that do not answer a metadata request listing themselves."""
    return [node.node_id for node in cluster.nodes if not node.is_ready(timeout=3.0)]
