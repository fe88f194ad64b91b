"""The projector against a real Kafka broker and real SQLite files: rows, duplicates, parking,
gap repair over HTTP, order and account streams interleaved, and a crash (SIGKILL) in the
middle of the stream.
"""

from __future__ import annotations

import base64
import os
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from query_service.read_model.order_writer import load_positions
from query_service.read_model.tables import (
    account_statement,
    accounts,
    customer_summaries,
    parked_events,
    product_sales,
)
from query_service.read_model.views import ReadViews
from shared.contract.envelope import EventEnvelope
from tests.integration.query_support import (
    SOURCE,
    CommandApiStandIn,
    OrderEventLog,
    ProjectorThread,
    command_api_stand_in,
    consumed,
    new_read_model,
    produce,
    produce_raw,
    project_directly,
    query_settings,
    sample_log,
    view_rows,
    wait_consumed,
)
from tests.support.processes import ServiceProcess, console_script, free_port, wait_until

pytestmark = pytest.mark.kafka


def test_events_become_exact_rows_and_a_second_delivery_changes_nothing(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 3, 250), ("pear", 1, 1000)])
    log.place("o-2", "c-1", [("apple", 1, 250)])
    log.place("o-3", "c-2", [("pear", 2, 1000)])
    log.change("o-1", "PAID")
    log.change("o-1", "SHIPPED")
    log.change("o-2", "PAID")
    log.cancel("o-2", "changed my mind")
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic)

    sent = produce(kafka_bootstrap, kafka_topic, log.envelopes)
    with ProjectorThread(settings, engine) as running:
        wait_consumed(engine, kafka_topic, sent)
        first = view_rows(engine)
        sent += produce(kafka_bootstrap, kafka_topic, log.envelopes)
        wait_consumed(engine, kafka_topic, sent)
        stats = running.projector.stats

    assert view_rows(engine) == first
    assert (stats.applied, stats.duplicates, stats.parked) == (7, 7, 0)
    views = ReadViews(engine)
    o1 = views.order("o-1")
    assert o1 is not None
    assert dict(o1.order) | {"created_at": None, "updated_at": None} == {
        "order_id": "o-1", "customer_id": "c-1", "status": "SHIPPED", "line_count": 2,
        "total_quantity": 4, "total_cents": 1750, "created_at": None, "updated_at": None,
        "version": 3,
    }  # fmt: skip
    assert o1.order["created_at"] == log.envelopes[0].occurred_at
    assert o1.order["updated_at"] == log.envelopes[4].occurred_at
    assert [(line["product_id"], line["quantity"], line["amount_cents"]) for line in o1.lines] == [
        ("apple", 3, 750),
        ("pear", 1, 1000),
    ]
    assert [(h["version"], h["event_type"], h["summary"]) for h in views.history("o-2")] == [
        (1, "OrderPlaced", "Placed by c-1: 1 line(s), 1 item(s), total 2.50"),
        (2, "OrderStatusChanged", "PLACED -> PAID"),
        (3, "OrderCancelled", "Cancelled (was PAID): changed my mind"),
    ]
    with engine.connect() as conn:
        customers = [tuple(r) for r in conn.execute(select(customer_summaries))]
        products = [tuple(r) for r in conn.execute(select(product_sales))]
    # customer_id, order_count, total_cents, placed, paid, shipped, delivered, cancelled
    assert sorted(customers) == [("c-1", 2, 1750, 0, 0, 1, 0, 1), ("c-2", 1, 2000, 1, 0, 0, 0, 0)]
    # product_id, units_sold, amount_cents, order_count: o-2 is cancelled and excluded
    assert sorted(products) == [("apple", 3, 750, 1), ("pear", 3, 3000, 2)]


def test_a_malformed_message_is_parked_and_later_events_still_apply(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    placed = log.place("o-1", "c-1", [("apple", 1, 250)])
    paid = log.change("o-1", "PAID")
    unknown = EventEnvelope(
        "evt-x", "OrderTeleported", "o-1", 3, 99, paid.occurred_at, 1, {"order_id": "o-1"}
    )
    key = b"o-1"  # same key, same partition: the later event must still apply
    headers = [("ce_id", b"\x00garbage"), ("content-type", b"application/json")]
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic)

    sent = produce(kafka_bootstrap, kafka_topic, [placed])
    sent += produce_raw(
        kafka_bootstrap,
        kafka_topic,
        [
            (key, b"{not json", headers),
            (key, unknown.to_json(), unknown.cloudevents_headers(SOURCE)),
            (key, None, []),
        ],
    )
    sent += produce(kafka_bootstrap, kafka_topic, [paid])
    with ProjectorThread(settings, engine):
        wait_consumed(engine, kafka_topic, sent)

    detail = ReadViews(engine).order("o-1")
    assert detail is not None
    assert (detail.order["status"], detail.order["version"]) == ("PAID", 2)
    with engine.connect() as conn:
        parked = list(conn.execute(select(parked_events).order_by("kafka_offset")).mappings())
    assert [row["kafka_offset"] for row in parked] == [1, 2, 3]
    with engine.connect() as conn:
        (partition,) = load_positions(conn, kafka_topic)  # one key, so one partition
    assert {row["kafka_partition"] for row in parked} == {partition}
    first = parked[0]
    assert (first["origin"], first["topic"], first["message_key"]) == ("kafka", kafka_topic, key)
    assert first["message_value"] == b"{not json"
    assert first["headers"] == [
        ["ce_id", base64.b64encode(b"\x00garbage").decode()],
        ["content-type", base64.b64encode(b"application/json").decode()],
    ]
    assert "not JSON" in first["error"]
    assert "unsupported event type OrderTeleported" in parked[1]["error"]
    assert "tombstone" in parked[2]["error"]


def test_an_event_whose_rows_the_database_rejects_is_parked_alone(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 1, 250)])
    clash = log.place("o-2", "c-1", [("pear", 1, 100)])
    log.place("o-3", "c-2", [("apple", 2, 250)])
    log.change("o-1", "PAID")
    # A second event with the first one's id: only the database's unique index notices.
    log.envelopes[1] = replace(clash, event_id=log.envelopes[0].event_id)
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic)
    sent = produce(kafka_bootstrap, kafka_topic, log.envelopes)
    with ProjectorThread(settings, engine, max_batch=500) as running:
        wait_consumed(engine, kafka_topic, sent)
        stats = running.projector.stats

    views = ReadViews(engine)
    assert [views.order_version(o) for o in ("o-1", "o-2", "o-3")] == [2, None, 1]
    with engine.connect() as conn:
        (parked,) = conn.execute(select(parked_events)).mappings()
    assert parked["message_key"] == b"o-2"
    assert "the read model rejected its rows" in parked["error"]
    assert (stats.applied, stats.parked) == (3, 1)
    customer = views.customer("c-1")
    assert customer is not None and customer.summary is not None
    assert (customer.summary["order_count"], customer.summary["total_cents"]) == (1, 250)


def test_a_gap_is_repaired_from_the_command_api_once_it_answers(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 2, 250)])
    log.change("o-1", "PAID")  # never reaches Kafka: only the command API has it
    log.change("o-1", "SHIPPED")
    api = CommandApiStandIn(log, port=free_port())  # not started: the API is down
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic, api.url)
    sent = produce(kafka_bootstrap, kafka_topic, [log.envelopes[0], log.envelopes[2]])

    try:
        with ProjectorThread(settings, engine) as running:
            stats = running.projector.stats
            wait_until(lambda: stats.retries >= 2, 30, "the projector never retried the gap")
            # Nothing skipped, nothing committed past the gap while the API is down.
            assert ReadViews(engine).order_version("o-1") in (None, 1)
            assert consumed(engine, kafka_topic) < sent
            api.start()
            wait_consumed(engine, kafka_topic, sent)
            repairs = running.projector.applier.repairs
    finally:
        api.stop()

    views = ReadViews(engine)
    assert [row["version"] for row in views.history("o-1")] == [1, 2, 3]
    assert views.history("o-1")[1]["event_id"] == log.envelopes[1].event_id
    assert views.order_version("o-1") == 3
    customer = views.customer("c-1")
    assert customer is not None and customer.summary is not None
    summary = customer.summary
    assert (summary["placed_orders"], summary["paid_orders"], summary["shipped_orders"]) == (
        0,
        0,
        1,
    )
    assert repairs.repaired_events == 1
    assert views.parked_count() == 0


def test_a_gap_the_command_api_cannot_fill_is_parked(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    log.place("o-1", "c-1", [("apple", 2, 250)])
    orphan = log.change("o-1", "PAID")
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    with command_api_stand_in(OrderEventLog()) as api:  # an empty log: it knows no order
        settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic, api.url)
        sent = produce(kafka_bootstrap, kafka_topic, [orphan])
        with ProjectorThread(settings, engine):
            wait_consumed(engine, kafka_topic, sent)

    views = ReadViews(engine)
    assert views.order_version("o-1") is None
    assert views.parked_count() == 1
    with engine.connect() as conn:
        error = conn.scalar(select(parked_events.c.error))
    assert "version gap not repaired" in str(error)


def test_interleaved_order_and_account_events_give_exact_balances_and_statements(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    opened, _ = log.open_account("c-1", initial_deposit_cents=10_000)  # c-1 v1, v2
    log.place("o-1", "c-1", [("apple", 2, 1250)])
    log.open_account("c-2")
    log.pay("o-1")  # o-1 v2 and c-1 v3 (-25.00), adjacent positions
    withheld = log.deposit("c-1", 500, deposit_id="dep-2")  # c-1 v4: only the command API has it
    log.place("o-2", "c-1", [("pear", 1, 3000)])
    log.pay("o-2")  # c-1 v5 (-30.00)
    log.deposit("c-2", 300, deposit_id="dep-c2")
    log.cancel("o-1", "changed my mind")  # o-1 v3 and c-1 v6 (+25.00)
    credit = log.envelopes[-1]
    assert credit.type == "AccountCredited"
    published = [e for e in log.envelopes if e is not withheld]
    c1 = log.stream("account:c-1")
    redelivered = [c1[2], credit]  # the relay re-publishing the debit and the credit
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")

    with command_api_stand_in(log) as api:
        settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic, api.url)
        sent = produce(kafka_bootstrap, kafka_topic, published)
        sent += produce(kafka_bootstrap, kafka_topic, redelivered)
        with ProjectorThread(settings, engine) as running:
            wait_consumed(engine, kafka_topic, sent)
            stats = running.projector.stats
            repairs = running.projector.applier.repairs

    assert (stats.applied, stats.duplicates, stats.parked) == (len(published), 2, 0)
    assert (repairs.gaps, repairs.repaired_events) == (1, 1)
    with engine.connect() as conn:
        rows = {r.customer_id: r for r in conn.execute(select(accounts))}
        lines = list(
            conn.execute(select(account_statement).order_by("customer_id", "version")).mappings()
        )
    # customer_id, balance, deposited, debited, credited, version, opened_at, updated_at
    assert tuple(rows["c-1"]) == (
        "c-1", 7500, 10_500, 5500, 2500, 6, opened.occurred_at, credit.occurred_at,
    )  # fmt: skip
    assert tuple(rows["c-2"])[:6] == ("c-2", 300, 300, 0, 0, 2)
    assert [
        (ln["customer_id"], ln["version"], ln["kind"], ln["amount_cents"], ln["balance_cents"],
         ln["order_id"], ln["deposit_id"])
        for ln in lines
    ] == [
        ("c-1", 2, "DEPOSIT", 10_000, 10_000, None, None),
        ("c-1", 3, "DEBIT", -2500, 7500, "o-1", None),
        ("c-1", 4, "DEPOSIT", 500, 8000, None, "dep-2"),
        ("c-1", 5, "DEBIT", -3000, 5000, "o-2", None),
        ("c-1", 6, "CREDIT", 2500, 7500, "o-1", None),
        ("c-2", 2, "DEPOSIT", 300, 300, None, "dep-c2"),
    ]  # fmt: skip
    assert [ln["event_id"] for ln in lines[:5]] == [e.event_id for e in c1[1:]]
    assert [ln["position"] for ln in lines[:5]] == [e.position for e in c1[1:]]
    views = ReadViews(engine)
    assert [views.order_version(o) for o in ("o-1", "o-2")] == [3, 2]
    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, log.envelopes)
    assert view_rows(engine) == view_rows(reference)


def test_an_account_event_with_a_wrong_balance_is_parked_and_the_log_later_repairs_it(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = OrderEventLog()
    log.open_account("c-1", initial_deposit_cents=1000)
    log.place("o-1", "c-1", [("apple", 1, 400)])
    _, debit = log.pay("o-1")
    bad_debit = replace(debit, data={**debit.data, "balance_cents": 700})  # 10.00 - 4.00 is 6.00
    later = log.deposit("c-1", 100)
    account_events = [e for e in log.envelopes if e.stream_id == "account:c-1"]
    engine = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")

    with command_api_stand_in(log) as api:
        settings = query_settings(str(engine.url), kafka_bootstrap, kafka_topic, api.url)
        sent = produce(kafka_bootstrap, kafka_topic, [*account_events[:2], bad_debit])
        with ProjectorThread(settings, engine) as running:
            wait_consumed(engine, kafka_topic, sent)
            views = ReadViews(engine)
            kept = views.account("c-1")
            assert kept is not None
            assert (kept["balance_cents"], kept["version"]) == (1000, 2)
            # The next event finds a gap; the log's own (right) debit fills it.
            sent += produce(kafka_bootstrap, kafka_topic, [later])
            wait_consumed(engine, kafka_topic, sent)
            stats = running.projector.stats

    assert (stats.applied, stats.parked) == (3, 1)
    with engine.connect() as conn:
        (parked,) = conn.execute(select(parked_events)).mappings()
    assert parked["message_key"] == b"account:c-1"
    assert parked["order_id"] == "account:c-1"  # the column holds the stream id
    assert "states balance 7.00, but account c-1 holds 10.00" in parked["error"]
    account = views.account("c-1")
    assert account is not None
    assert (account["balance_cents"], account["debited_cents"], account["version"]) == (700, 400, 4)


def test_a_killed_projector_restarts_where_the_read_model_says_and_counts_nothing_twice(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = sample_log(orders=400, customers=7)
    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, log.envelopes)
    read_model_url = f"sqlite:///{tmp_path / 'read.db'}"
    engine = new_read_model(read_model_url)
    env = {
        **_subprocess_env(tmp_path),
        "READ_MODEL_URL": read_model_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": kafka_topic,
        "KAFKA_GROUP_ID": "projector-crash-test",
    }
    argv = [
        *console_script("query-projector", "query_service.projector_main"),
        "--max-batch", "25", "--session-timeout-ms", "6000",
    ]  # fmt: skip
    projector = ServiceProcess("projector", argv, env, tmp_path / "projector.log")
    sent = produce(kafka_bootstrap, kafka_topic, log.envelopes)
    # Duplicates as a relay would re-send them after its own crash.
    sent += produce(kafka_bootstrap, kafka_topic, log.envelopes[:300])

    try:
        projector.start()
        wait_until(lambda: consumed(engine, kafka_topic) > 0, 60, projector.tail)
        projector.kill()
        after_kill = consumed(engine, kafka_topic)
        projector.start()
        wait_consumed(engine, kafka_topic, sent, timeout=90)
        assert projector.stop() == 0  # SIGTERM: a clean stop
    finally:
        projector.stop()
    assert '"msg": "projector stopped"' in projector.output()

    assert after_kill <= sent
    assert view_rows(engine) == view_rows(reference)
    assert ReadViews(engine).parked_count() == 0


def test_a_projector_started_before_its_database_is_reachable_waits_for_it(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = sample_log(orders=20, customers=3)
    database = tmp_path / "read.db"
    database.mkdir()  # SQLite cannot open a directory: the database is unreachable
    env = {
        **_subprocess_env(tmp_path),
        "READ_MODEL_URL": f"sqlite:///{database}",
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC": kafka_topic,
        "KAFKA_GROUP_ID": "projector-late-database-test",
    }
    argv = [*console_script("query-projector", "query_service.projector_main")]
    projector = ServiceProcess("projector", argv, env, tmp_path / "projector.log")
    sent = produce(kafka_bootstrap, kafka_topic, log.envelopes)
    try:
        projector.start()
        projector.wait_for_output("creating the schema failed; retrying")
        assert projector.is_running, projector.tail()
        database.rmdir()
        engine = new_read_model(f"sqlite:///{database}")
        wait_consumed(engine, kafka_topic, sent, timeout=60)
        assert projector.stop() == 0
    finally:
        projector.stop()
    assert ReadViews(engine).parked_count() == 0


def _subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONUNBUFFERED="1", DATA_DIR=str(tmp_path), LOG_LEVEL="INFO")
    env.pop("READ_MODEL_URL", None)
    return env
