"""A throwaway Kafka topic for a test or a package of tests: created, yielded, deleted."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator


@contextlib.contextmanager
def fresh_topic(bootstrap: str, prefix: str, partitions: int = 3) -> Iterator[str]:
    """A new topic named `prefix-<random>` with `partitions` partitions, deleted afterwards."""
    from kafka import KafkaAdminClient  # lazy: unit-only runs need not import kafka-python

    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-admin")
    try:
        admin.create_topics(
            {name: {"num_partitions": partitions, "replication_factor": 1}},
            wait_for_metadata=True,
        )
    finally:
        admin.close()
    yield name
    # Cleanup only: a broker that a test left down must not turn a pass into an error.
    with contextlib.suppress(Exception):
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, client_id="tests-admin", bootstrap_timeout_ms=5000
        )
        try:
            admin.delete_topics([name], timeout_ms=5000)
        finally:
            admin.close()
