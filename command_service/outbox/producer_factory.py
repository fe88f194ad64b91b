"""The relay's Kafka producer, built anew after every failed batch (see relay.py)."""

from __future__ import annotations

from typing import Any

from shared.infra import kafka as kafka_clients
from shared.infra.config import Settings


class DefaultProducerFactory:
    """The relay's producer; the topic is made sure of (created if missing) at the first build."""

    def __init__(self) -> None:
        self._topic_ensured = False

    def __call__(self, settings: Settings) -> Any:
        producer = kafka_clients.create_producer(settings)
        try:
            # Once per process, not at every rebuild after a failed batch: CreateTopics is
            # forwarded to the active controller, and a broker's channel to a controller that
            # was just cut off hangs until its controller.socket.timeout.ms (30 s by default).
            if not self._topic_ensured:
                self._ensure_topic(settings)
                self._topic_ensured = True
            # Fetch the topic's metadata now rather than on the first event's send.
            producer.partitions_for(settings.kafka_topic)
        except BaseException:
            producer.close(timeout=0)
            raise
        return producer

    @staticmethod
    def _ensure_topic(settings: Settings) -> None:
        admin = kafka_clients.create_admin(settings)
        try:
            kafka_clients.ensure_topic(
                admin,
                settings.kafka_topic,
                settings.kafka_topic_partitions,
                settings.kafka_replication_factor,
            )
        finally:
            admin.close()
