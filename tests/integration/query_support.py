"""Helpers for the query side's integration tests: real envelopes, a stand-in command API over
HTTP, producing to Kafka, running the projector in a thread, and dumping the read model.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, abort, jsonify, request
from kafka import KafkaProducer
from sqlalchemy import Engine, select
from werkzeug.serving import BaseWSGIServer, make_server

from command_service.adapters.event_codec import encode
from command_service.domain import order as domain
from query_service.projection.events import account_stream
from query_service.projection.parsing import parse_event
from query_service.projector.applier import EventApplier
from query_service.projector.consumer import Projector, ProjectorOptions
from query_service.projector_main import build_projector
from query_service.read_model.order_writer import load_positions
from query_service.read_model.tables import (
    VIEW_TABLES,
    create_read_model_engine,
    create_read_model_schema,
)
from shared.contract.envelope import EventEnvelope
from shared.infra.config import Settings
from shared.infra.db import write_transaction
from tests.support.processes import free_port, wait_until

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
SOURCE = "urn:event-sourced-orders:command-service"


@dataclass
class AccountState:
    """What the log builder remembers of an account to write its next events correctly."""

    version: int = 0
    balance_cents: int = 0
    debits: dict[str, int] = field(default_factory=dict)
    credited: set[str] = field(default_factory=set)


class OrderEventLog:
    """Builds the envelopes the command side would store, in one log: order events with the
    real decider and codec, account events straight from the event contract (the command
    side's account code is not what the read side builds against), balances kept right.
    """

    def __init__(self, start: datetime = T0) -> None:
        self.envelopes: list[EventEnvelope] = []
        self.clock = start
        self._states: dict[str, domain.Order] = {}
        self.accounts: dict[str, AccountState] = {}

    def place(
        self, order_id: str, customer_id: str, lines: Iterable[tuple[str, int, int]], **kw: Any
    ) -> EventEnvelope:
        order_lines = tuple(domain.OrderLine(p, q, price) for p, q, price in lines)
        return self._record(None, domain.PlaceOrder(order_id, customer_id, order_lines), **kw)

    def change(self, order_id: str, status: str, **kw: Any) -> EventEnvelope:
        command = domain.ChangeOrderStatus(order_id, domain.OrderStatus(status))
        return self._record(self._states[order_id], command, **kw)

    def cancel(self, order_id: str, reason: str | None = None, **kw: Any) -> EventEnvelope:
        """Cancel; a PAID order debited by `pay` is credited back in the same moment."""
        before = self._states[order_id]
        cancelled = self._record(before, domain.CancelOrder(order_id, reason), **kw)
        account = self.accounts.get(before.customer_id)
        if (
            before.status is domain.OrderStatus.PAID
            and account is not None
            and order_id in account.debits
            and order_id not in account.credited
        ):
            account.credited.add(order_id)
            self._move_money(
                before.customer_id, "AccountCredited", order_id, account.debits[order_id],
                at=cancelled.occurred_at,
            )  # fmt: skip
        return cancelled

    def open_account(
        self, customer_id: str, initial_deposit_cents: int = 0, **kw: Any
    ) -> list[EventEnvelope]:
        """AccountOpened, plus FundsDeposited for an initial deposit, in one moment."""
        assert customer_id not in self.accounts, f"{customer_id} already has an account"
        self.accounts[customer_id] = AccountState()
        opened = self._record_account(customer_id, "AccountOpened", {}, **kw)
        if not initial_deposit_cents:
            return [opened]
        return [opened, self.deposit(customer_id, initial_deposit_cents, at=opened.occurred_at)]

    def deposit(
        self, customer_id: str, amount_cents: int, deposit_id: str | None = None, **kw: Any
    ) -> EventEnvelope:
        assert amount_cents > 0
        account = self.accounts[customer_id]
        account.balance_cents += amount_cents
        data = {
            "amount_cents": amount_cents,
            "balance_cents": account.balance_cents,
            "deposit_id": deposit_id,
        }
        return self._record_account(customer_id, "FundsDeposited", data, **kw)

    def pay(self, order_id: str, **kw: Any) -> tuple[EventEnvelope, EventEnvelope]:
        """OrderStatusChanged(PAID) and the customer's AccountDebited, as one transaction."""
        order = self._states[order_id]
        account = self.accounts[order.customer_id]
        assert order_id not in account.debits
        assert account.balance_cents >= order.total_cents, f"{order.customer_id} cannot pay"
        paid = self.change(order_id, "PAID", **kw)
        account.debits[order_id] = order.total_cents
        debited = self._move_money(
            order.customer_id, "AccountDebited", order_id, -order.total_cents,
            at=paid.occurred_at,
        )  # fmt: skip
        return paid, debited

    def stream(self, stream_id: str) -> list[EventEnvelope]:
        """The events of one order (by order id) or account (by account:<customer_id>)."""
        return [e for e in self.envelopes if e.stream_id == stream_id]

    def _move_money(
        self, customer_id: str, event_type: str, order_id: str, signed_cents: int, **kw: Any
    ) -> EventEnvelope:
        account = self.accounts[customer_id]
        account.balance_cents += signed_cents
        data = {
            "order_id": order_id,
            "amount_cents": abs(signed_cents),
            "balance_cents": account.balance_cents,
        }
        return self._record_account(customer_id, event_type, data, **kw)

    def _record_account(
        self, customer_id: str, event_type: str, data: dict[str, Any], **kw: Any
    ) -> EventEnvelope:
        account = self.accounts[customer_id]
        account.version += 1
        data = {"customer_id": customer_id, **data}
        return self._append(account_stream(customer_id), account.version, event_type, data, **kw)

    def _record(
        self, state: domain.Order | None, command: domain.Command, **kw: Any
    ) -> EventEnvelope:
        (event,) = domain.decide(state, command)
        self._states[command.order_id] = domain.evolve(state, event)
        event_type, schema_version, data = encode(event)
        version = self._states[command.order_id].version
        return self._append(command.order_id, version, event_type, data, schema_version, **kw)

    def _append(
        self,
        stream_id: str,
        version: int,
        event_type: str,
        data: dict[str, Any],
        schema_version: int = 1,
        at: datetime | None = None,
        advance: timedelta = timedelta(seconds=1),
    ) -> EventEnvelope:
        if at is None:
            self.clock += advance
        envelope = EventEnvelope(
            event_id=str(uuid.uuid4()),
            type=event_type,
            stream_id=stream_id,
            version=version,
            position=len(self.envelopes) + 1,
            occurred_at=at or self.clock,
            schema_version=schema_version,
            data=data,
            metadata={"correlation_id": str(uuid.uuid4())},
        )
        self.envelopes.append(envelope)
        return envelope


def sample_log(orders: int = 12, customers: int = 3) -> OrderEventLog:
    """A mixed log: every lifecycle path, repeated products, several customers. All customers
    but the last have accounts: their orders are paid from them (and refunded when cancelled
    after payment), and they deposit now and then; the last one's orders are paid without.
    """
    log = OrderEventLog()
    payers = {f"c-{n}" for n in range(customers - 1)}
    for customer_id in sorted(payers):
        # Enough for every order they place (each is at most 8.49).
        log.open_account(customer_id, initial_deposit_cents=900 * (orders // customers + 1))
    for n in range(orders):
        order_id = f"o-{n:03d}"
        customer_id = f"c-{n % customers}"
        lines = [(f"p-{n % 4}", 1 + n % 3, 150 + 25 * (n % 5)), ("p-gift", 1, 99)]
        log.place(order_id, customer_id, lines)
        path = n % 5
        if path >= 1 and customer_id in payers:
            log.pay(order_id)
        elif path >= 1:
            log.change(order_id, "PAID")
        if path in (2, 3):
            log.change(order_id, "SHIPPED")
        if path == 3:
            log.change(order_id, "DELIVERED")
        if path == 4:
            log.cancel(order_id, "out of stock")
        if n % 7 == 3 and customer_id in payers:
            log.deposit(customer_id, 500 + n, deposit_id=f"dep-{n}")
    return log


class CommandApiStandIn:
    """Serves GET /orders/{id}/events, GET /accounts/{id}/events, GET /events and GET /events/head
    from a log, over real HTTP.
    """

    def __init__(self, log: OrderEventLog, port: int | None = None) -> None:
        self.log = log
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fail_after_position: int | None = None  # simulate an outage mid-feed
        self.stream_request_headers: list[dict[str, str]] = []  # of each stream GET, in order
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> CommandApiStandIn:
        self._server = make_server("127.0.0.1", self.port, self._app(), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = None

    def _app(self) -> Flask:
        app = Flask("command-api-stand-in")

        @app.get("/orders/<order_id>/events")
        def order_events(order_id: str) -> Any:
            self.stream_request_headers.append(dict(request.headers))
            events = self.log.stream(order_id)
            if not events:
                abort(404)
            return jsonify(
                order_id=order_id, version=events[-1].version, events=[e.to_dict() for e in events]
            )

        @app.get("/accounts/<customer_id>/events")
        def account_events(customer_id: str) -> Any:
            events = self.log.stream(account_stream(customer_id))
            if not events:
                abort(404)
            return jsonify(
                customer_id=customer_id,
                version=events[-1].version,
                events=[e.to_dict() for e in events],
            )

        @app.get("/events")
        def events_page() -> Any:
            after = int(request.args.get("after", 0))
            limit = int(request.args.get("limit", 100))
            if self.fail_after_position is not None and after >= self.fail_after_position:
                abort(503)
            page = [e for e in self.log.envelopes if e.position > after][:limit]
            return jsonify(
                events=[e.to_dict() for e in page],
                next_after=page[-1].position if page else after,
                has_more=len(page) == limit,
            )

        @app.get("/events/head")
        def events_head() -> Any:
            return jsonify(head_position=len(self.log.envelopes))

        return app


@contextmanager
def command_api_stand_in(log: OrderEventLog) -> Iterator[CommandApiStandIn]:
    server = CommandApiStandIn(log).start()
    try:
        yield server
    finally:
        server.stop()


def produce(bootstrap: str, topic: str, envelopes: Iterable[EventEnvelope]) -> int:
    """Publish envelopes as the relay does (key = order id, CloudEvents headers); the count."""
    messages = [
        (e.stream_id.encode(), e.to_json(), e.cloudevents_headers(SOURCE)) for e in envelopes
    ]
    return produce_raw(bootstrap, topic, messages)


def produce_raw(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes | None, list[Any]]]
) -> int:
    """Publish raw (key, value, headers) messages in order and wait for the broker."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value, headers in messages:
            producer.send(topic, key=key, value=value, headers=headers)
        producer.flush(30)
    finally:
        producer.close(5)
    return len(messages)


def query_settings(
    read_model_url: str,
    bootstrap: str = "127.0.0.1:1",
    topic: str = "orders.events",
    command_api_url: str = "http://127.0.0.1:1",
    group_id: str | None = None,
    **changes: Any,
) -> Settings:
    """Settings for the query side of one test."""
    settings = Settings.from_env({}).replace(
        read_model_url=read_model_url,
        kafka_bootstrap_servers=bootstrap,
        kafka_topic=topic,
        kafka_topic_partitions=3,
        command_api_url=command_api_url,
        kafka_group_id=group_id or f"query-test-{uuid.uuid4().hex[:8]}",
        log_level="WARNING",
    )
    return settings.replace(**changes) if changes else settings


def new_read_model(url: str) -> Engine:
    engine = create_read_model_engine(url)
    create_read_model_schema(engine)
    return engine


def project_directly(engine: Engine, envelopes: Iterable[EventEnvelope]) -> None:
    """Fill a read model with the projection code, without Kafka (the reference model)."""
    applier = EventApplier(gap_source=None)
    with write_transaction(engine) as conn, applier.batch(conn) as projection:
        for envelope in envelopes:
            projection.apply(parse_event(envelope))


class ProjectorThread:
    """The real projector (real consumer, real database) running in a thread of the test."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        max_batch: int = 100,
        log_applied_events: bool = True,
    ) -> None:
        options = replace(
            ProjectorOptions(),
            max_batch=max_batch,
            poll_timeout_ms=200,
            log_applied_events=log_applied_events,
        )
        self.projector: Projector = build_projector(settings, engine, options)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.projector.run, args=(self._stop,), daemon=True)

    def __enter__(self) -> ProjectorThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "projector thread did not stop"


def consumed(engine: Engine, topic: str) -> int:
    """How many messages of the topic the read model has consumed (sum of next offsets)."""
    with engine.connect() as conn:
        return sum(load_positions(conn, topic).values())


def wait_consumed(engine: Engine, topic: str, count: int, timeout: float = 60) -> None:
    wait_until(
        lambda: consumed(engine, topic) >= count,
        timeout,
        lambda: f"read model consumed {consumed(engine, topic)} of {count} messages",
    )


def view_rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every view table, in primary key order, for exact comparisons."""
    rows = {}
    with engine.connect() as conn:
        for table in VIEW_TABLES:
            query = select(table).order_by(*table.primary_key.columns)
            rows[table.name] = [tuple(row) for row in conn.execute(query)]
    return rows
