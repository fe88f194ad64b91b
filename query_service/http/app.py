"""Application factory of the query service."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from query_service.http.api import queries
from query_service.http.metrics import install_query_metrics
from query_service.http.openapi import query_document
from query_service.http.parked import parked
from query_service.projector.applier import EventApplier
from query_service.projector.command_api import CommandApiClient
from query_service.projector.lag import projector_report
from query_service.read_model.tables import create_read_model_engine, create_read_model_schema
from query_service.read_model.views import ReadViews
from shared.contract.principal import EVENTS_READ, METRICS_READ, READ_ALL
from shared.http.api_docs import api_docs
from shared.http.auth import install_auth, public, requires
from shared.http.correlation import install_correlation_ids
from shared.http.errors import Problem, problem_response, register_problem_handlers
from shared.http.openapi_security import with_security
from shared.http.readiness_metric import ReadinessGauge
from shared.http.security_headers import install_security_headers
from shared.http.trace_context import install_trace_context
from shared.infra.auth_setup import build_verifier, service_token
from shared.infra.config import Settings
from shared.infra.structured_logging import configure_logging
from shared.infra.tracing import configure_tracing

log = logging.getLogger("query_service.app")


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: settings from the environment unless given, schema ensured."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    configure_tracing(settings, "query-api")
    verifier = build_verifier(settings, settings.query_api_host)
    engine = create_read_model_engine(settings.read_model_url)
    # So the API answers (empty) before the projector's first run instead of failing.
    create_read_model_schema(engine)
    views = ReadViews(engine, settings.read_your_writes_max_waiters)

    app = Flask(__name__, static_folder=None)
    app.config["SETTINGS"] = settings
    app.extensions["read_views"] = views
    # A parked event's retry repairs a version gap as the projector does, from the command API.
    gap_source = CommandApiClient(
        settings.command_api_url, token=service_token(settings, "query-api", [EVENTS_READ])
    )
    app.extensions["parked_applier"] = EventApplier(gap_source)

    install_correlation_ids(app)
    install_trace_context(app)
    install_security_headers(app)

    def check_ready() -> None:
        # /readyz is open to anyone, so no SQL text and no positions: those are in
        # /projector/status.
        try:
            with engine.connect() as conn:
                conn.execute(select(1))
        except SQLAlchemyError as exc:
            log.warning("not ready: read model unreachable", extra={"cause": str(exc)})
            raise Problem(503, "not-ready", "Not ready", "Read model unreachable.") from exc

    install_query_metrics(app, views, settings, ReadinessGauge(check_ready))
    register_problem_handlers(app)
    app.register_blueprint(queries)
    app.register_blueprint(parked)
    app.register_blueprint(api_docs(lambda: with_security(query_document(), app), "Order views"))

    @app.errorhandler(SQLAlchemyError)
    def _database_unavailable(exc: SQLAlchemyError) -> Response:
        return problem_response(
            Problem(
                503,
                "read-model-unavailable",
                "Read model unavailable",
                "The read model database cannot answer right now; retry shortly.",
                headers={"Retry-After": "1"},
            )
        )

    @app.get("/healthz")
    @public
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    @public
    def readyz() -> Response:
        check_ready()
        return jsonify(status="ready", database="ok")

    @app.get("/projector/status")
    @requires(METRICS_READ, READ_ALL)
    def projector_status() -> Response:
        """Each partition's applied position and lag, and the parked events (operators)."""
        positions = views.positions(settings.kafka_topic)
        return jsonify(
            parked_events=views.parked_count(),
            projector=projector_report(positions, settings),
        )

    install_auth(app, verifier)
    return app
