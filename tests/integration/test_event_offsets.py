"""The projector records each event's Kafka partition and offset with its rows (the first copy
seen), on SQLite and PostgreSQL with a real broker; the query API serves them; a rebuild,
which reads the log and not the topic, leaves them unknown.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from kafka import KafkaProducer
from sqlalchemy import Engine

from query_service.projector.command_api import EventsPage
from query_service.read_model.event_offsets import EventOffset
from query_service.read_model.views import ReadViews
from query_service.rebuild import rebuild_read_model
from shared.contract.envelope import EventEnvelope
from tests.integration.query_api_support import api_client, get
from tests.integration.query_support import (
    SOURCE,
    OrderEventLog,
    ProjectorThread,
    project_directly,
    query_settings,
    wait_consumed,
)

pytestmark = pytest.mark.kafka


def publish(bootstrap: str, topic: str, envelopes: Iterable[EventEnvelope]) -> list[EventOffset]:
    """Publish as the relay does; where the broker put each message."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        placed = []
        for e in envelopes:
            sent = producer.send(
                topic,
                key=e.stream_id.encode(),
                value=e.to_json(),
                headers=e.cloudevents_headers(SOURCE),
            )
            meta = sent.get(30)
            placed.append(
                EventOffset(e.stream_id, e.version, e.event_id, topic, meta.partition, meta.offset)
            )
    finally:
        producer.close(5)
    return placed


def known(engine: Engine, stream_id: str) -> list[EventOffset]:
    found = ReadViews(engine).stream_offsets(stream_id)
    assert found is not None, f"{stream_id} is not in the read model"
    return found.offsets


def test_each_event_keeps_the_offset_of_its_first_message(
    kafka_bootstrap: str, kafka_topic: str, read_model_engine: Engine, tmp_path: Path
) -> None:
    log = OrderEventLog()
    log.open_account("c-1", 5000)
    log.place("o-1", "c-1", [("apple", 2, 250)])
    log.pay("o-1")
    first_copies = list(log.envelopes)
    url = read_model_engine.url.render_as_string(hide_password=False)
    settings = query_settings(url, kafka_bootstrap, kafka_topic)

    with ProjectorThread(settings, read_model_engine, max_batch=2) as running:
        first = publish(kafka_bootstrap, kafka_topic, first_copies)
        wait_consumed(read_model_engine, kafka_topic, len(first))
        # The relay publishing the same events again (after a crash): later offsets.
        again = publish(kafka_bootstrap, kafka_topic, first_copies)
        shipped = publish(kafka_bootstrap, kafka_topic, [log.change("o-1", "SHIPPED")])
        wait_consumed(read_model_engine, kafka_topic, len(first) + len(again) + 1)
        stats = running.projector.stats

    assert (stats.applied, stats.duplicates) == (6, 5)
    assert all(a.kafka_offset > f.kafka_offset for f, a in zip(first, again, strict=True))
    by_stream = {
        stream: [o for o in first + shipped if o.stream_id == stream]
        for stream in ("o-1", "account:c-1")
    }
    assert known(read_model_engine, "o-1") == by_stream["o-1"]
    assert [o.version for o in by_stream["o-1"]] == [1, 2, 3]
    assert known(read_model_engine, "account:c-1") == by_stream["account:c-1"]
    assert [o.version for o in by_stream["account:c-1"]] == [1, 2, 3]

    client = api_client(read_model_engine, tmp_path / "auth")
    body = get(client, "/orders/o-1/kafka-messages")
    assert body == {
        "stream_id": "o-1",
        "version": 3,
        "messages": [
            {"version": o.version, "event_id": o.event_id, "topic": kafka_topic,
             "partition": o.kafka_partition, "offset": o.kafka_offset}
            for o in by_stream["o-1"]
        ],
    }  # fmt: skip
    account = get(client, "/accounts/c-1/kafka-messages")
    assert [m["offset"] for m in account["messages"]] == [
        o.kafka_offset for o in by_stream["account:c-1"]
    ]
    problem = get(client, "/orders/o-404/kafka-messages", 404)
    assert problem["type"].endswith("order-not-found")


def test_events_applied_without_kafka_get_the_offset_of_their_message_when_it_comes(
    kafka_bootstrap: str, kafka_topic: str, read_model_engine: Engine
) -> None:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 1, 250)])
    log.change("o-1", "PAID")
    # As a gap repair or a rebuild without Kafka positions: rows, no offsets.
    project_directly(read_model_engine, log.envelopes)
    assert known(read_model_engine, "o-1") == []
    url = read_model_engine.url.render_as_string(hide_password=False)
    settings = query_settings(url, kafka_bootstrap, kafka_topic)

    with ProjectorThread(settings, read_model_engine) as running:
        sent = publish(kafka_bootstrap, kafka_topic, log.envelopes)
        wait_consumed(read_model_engine, kafka_topic, len(sent))
        stats = running.projector.stats

    assert (stats.applied, stats.duplicates) == (0, 2)
    assert known(read_model_engine, "o-1") == sent


class LogFeed:
    """The command API's GET /events over an in-memory log."""

    def __init__(self, envelopes: list[EventEnvelope]) -> None:
        self.events = [e.to_dict() for e in envelopes]

    def events_page(self, after: int, limit: int) -> EventsPage:
        page = [e for e in self.events if e["position"] > after][:limit]
        next_after = page[-1]["position"] if page else after
        return EventsPage(page, next_after, bool(page))


def test_a_rebuild_leaves_offsets_unknown(
    kafka_bootstrap: str, kafka_topic: str, read_model_engine: Engine
) -> None:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 1, 250)])
    url = read_model_engine.url.render_as_string(hide_password=False)
    settings = query_settings(url, kafka_bootstrap, kafka_topic)
    with ProjectorThread(settings, read_model_engine):
        sent = publish(kafka_bootstrap, kafka_topic, log.envelopes)
        wait_consumed(read_model_engine, kafka_topic, len(sent))
    assert known(read_model_engine, "o-1") == sent

    rebuild_read_model(read_model_engine, LogFeed(log.envelopes), kafka_topic, None)

    assert known(read_model_engine, "o-1") == []
