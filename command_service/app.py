"""Application factory of the command service."""

from __future__ import annotations

from flask import Flask, Response, jsonify

from command_service.account_api import accounts
from command_service.account_service import AccountService
from command_service.api import orders
from command_service.application import OrderService
from command_service.event_store import EventStore, EventStoreUnavailable
from command_service.idempotency import IdempotencyKeys
from command_service.metrics import install_command_metrics
from command_service.openapi import command_document
from command_service.problems import register_command_problems
from shared.api_docs import api_docs
from shared.config import Settings
from shared.correlation import install_correlation_ids
from shared.db import create_database_engine
from shared.errors import Problem, register_problem_handlers
from shared.structured_logging import configure_logging


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: settings from the environment unless given, schema ensured."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    engine = create_database_engine(settings.event_store_url, settings.sqlite_synchronous)
    store = EventStore(engine)
    store.create_schema()

    app = Flask(__name__)
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
    install_command_metrics(app, store, settings)
    register_problem_handlers(app)
    register_command_problems(app)
    app.register_blueprint(orders)
    app.register_blueprint(accounts)
    app.register_blueprint(api_docs(command_document, "Order commands"))

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            store.ping()
        except EventStoreUnavailable as exc:
            raise Problem(503, "not-ready", "Not ready", f"Event store unreachable: {exc}") from exc
        return jsonify(status="ready", head_position=store.head_position())

    return app
