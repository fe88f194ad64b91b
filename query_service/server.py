"""`query-api`: serve the query service with gunicorn on QUERY_API_HOST:QUERY_API_PORT."""

from __future__ import annotations

from shared.http.gunicorn_server import GunicornServer, gunicorn_options
from shared.infra.config import Settings
from shared.infra.metrics_dir import claim_metrics_dir
from shared.infra.structured_logging import configure_logging


def main() -> None:
    """Console script entry point."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    # Before gunicorn forks: the workers inherit the directory through the environment.
    metrics_dir = claim_metrics_dir(settings.metrics_dir / "query", "api")
    options = gunicorn_options(
        settings.query_api_host,
        settings.query_api_port,
        settings.query_api_workers,
        settings.log_level,
        metrics_dir,
    )
    GunicornServer("query_service.http.app:create_app()", options).run()
