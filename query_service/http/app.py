"""Application factory of the query service."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from query_service.http.api import queries
from query_service.http.metrics import install_query_metrics
from query_service.http.openapi import query_document
from query_service.projector.lag import projector_report
from query_service.read_model.tables import create_read_model_engine, create_read_model_schema
from query_service.read_model.views import ReadViews
from shared.http.api_docs import api_docs
from shared.http.correlation import install_correlation_ids
from shared.http.errors import Problem, problem_response, register_problem_handlers
from shared.infra.config import Settings
from shared.infra.structured_logging import configure_logging


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app: settings from the environment unless given, schema ensured."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level)
    engine = create_read_model_engine(settings.read_model_url)
    # So the API answers (empty) before the projector's first run instead of failing.
    create_read_model_schema(engine)
    views = ReadViews(engine)

    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.extensions["read_views"] = views

    install_correlation_ids(app)
    install_query_metrics(app, views, settings)
    register_problem_handlers(app)
    app.register_blueprint(queries)
    app.register_blueprint(api_docs(query_document, "Order views"))

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
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        try:
            with engine.connect() as conn:
                conn.execute(select(1))
            positions = views.positions(settings.kafka_topic)
            parked = views.parked_count()
        except SQLAlchemyError as exc:
            raise Problem(503, "not-ready", "Not ready", f"Read model unreachable: {exc}") from exc
        return jsonify(
            status="ready",
            database="ok",
            parked_events=parked,
            projector=projector_report(positions, settings),
        )

    return app
