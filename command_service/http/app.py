"""Application factory of the command service."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Flask, Response, jsonify
from sqlalchemy import Column, Engine, Integer, MetaData, Table, delete, insert
from sqlalchemy.exc import OperationalError

from command_service.adapters.event_store import EventStore, EventStoreUnavailable
from command_service.adapters.idempotency_store import IdempotencyKeys
from command_service.application.accounts import AccountService
from command_service.application.orders import OrderService
from command_service.http.accounts import accounts
from command_service.http.asyncapi import asyncapi_docs
from command_service.http.events import events
from command_service.http.metrics import install_command_metrics
from command_service.http.openapi import command_document
from command_service.http.orders import orders
from command_service.http.problems import register_command_problems
from shared.http.api_docs import api_docs
from shared.http.auth import install_auth, public
from shared.http.correlation import install_correlation_ids
from shared.http.errors import Problem, register_problem_handlers
from shared.http.openapi_security import with_security
from shared.http.readiness_metric import ReadinessGauge
from shared.http.security_headers import install_security_headers
from shared.http.trace_context import install_trace_context
from shared.infra.auth_setup import build_verifier
from shared.infra.config import Settings
from shared.infra.db import UTCDateTime, create_database_engine, create_tables, write_transaction
from shared.infra.structured_logging import configure_logging
from shared.infra.tracing import configure_tracing

log = logging.getLogger("command_service.app")

probe_metadata = MetaData()

# One row, rewritten by readiness probes: a write to the event log's database that adds no event.
write_probe_table = Table(
    "write_probe",
    probe_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("written_at", UTCDateTime(), nullable=False),
)


class EventLogWrites:
    """Whether the event log's database takes writes, as /readyz reports it."""

    # A probe write on every readiness check would queue for SQLite's single write lock with
    # the commands. So the log is trusted until a request meets EventStoreUnavailable; from
    # then on each check writes one row, and the first write that succeeds trusts it again.

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.refusal: str | None = None

    def create_schema(self) -> None:
        """Create the probe table if missing (idempotent)."""
        create_tables(self.engine, probe_metadata)

    def refused(self, exc: EventStoreUnavailable) -> None:
        """Remember that the log refused a request, until a probe write succeeds."""
        self.refusal = str(exc)

    def check(self) -> None:
        """Raise EventStoreUnavailable while a refusal is remembered and a probe write fails."""
        if self.refusal is None:
            return
        try:
            with write_transaction(self.engine) as conn:
                conn.execute(delete(write_probe_table))
                conn.execute(insert(write_probe_table).values(id=1, written_at=datetime.now(UTC)))
        except OperationalError as exc:
            raise EventStoreUnavailable(str(exc.orig)) from exc
        self.refusal = None


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: settings from the environment unless given, schema ensured."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing(settings, "command-api")
    verifier = build_verifier(settings, settings.command_api_host)
    engine = create_database_engine(settings.event_store_url, settings.sqlite_synchronous)
    store = EventStore(engine)
    store.create_schema()
    writes = EventLogWrites(engine)
    writes.create_schema()

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.command_max_body_bytes
    app.config["SETTINGS"] = settings
    retries, every = settings.command_retry_attempts, settings.snapshot_every
    app.extensions["order_service"] = OrderService(store, retries, every)
    app.extensions["account_service"] = AccountService(store, retries, every)
    app.extensions["event_store"] = store
    keys = IdempotencyKeys(engine, settings.idempotency_key_ttl_seconds)
    keys.create_schema()
    app.extensions["idempotency_keys"] = keys

    install_correlation_ids(app)
    install_trace_context(app)
    install_security_headers(app)

    def check_ready() -> None:
        # /readyz is open to anyone, so it says what is wrong but not how: the cause (SQL
        # text, paths) goes to the log and to /metrics, never into this body.
        try:
            store.ping()
        except EventStoreUnavailable as exc:
            log.warning("not ready: event store unreachable", extra={"cause": str(exc)})
            raise Problem(503, "not-ready", "Not ready", "Event store unreachable.") from exc
        try:
            writes.check()
        except EventStoreUnavailable as exc:
            log.warning("not ready: event log refuses writes", extra={"cause": str(exc)})
            raise Problem(503, "not-ready", "Not ready", "Event log refuses writes.") from exc

    install_command_metrics(app, store, settings, ReadinessGauge(check_ready))
    register_problem_handlers(app)
    register_command_problems(app, on_unavailable=writes.refused)
    app.register_blueprint(orders)
    app.register_blueprint(accounts)
    app.register_blueprint(events)
    app.register_blueprint(asyncapi_docs(settings))
    app.register_blueprint(
        api_docs(lambda: with_security(command_document(), app), "Order commands")
    )

    @app.get("/healthz")
    @public
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    @public
    def readyz() -> Response:
        check_ready()
        return jsonify(status="ready")

    install_auth(app, verifier)
    return app
