"""`query-api`: serve the query service with gunicorn on QUERY_API_HOST:QUERY_API_PORT."""

from __future__ import annotations

from shared.config import Settings
from shared.gunicorn_server import GunicornServer, gunicorn_options


def main() -> None:
    """Console script entry point."""
    settings = Settings.from_env()
    options = gunicorn_options(
        settings.query_api_host, settings.query_api_port, settings.query_api_workers
    )
    GunicornServer("query_service.app:create_app()", options).run()
