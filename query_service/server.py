"""`query-api`: serve the query service with gunicorn on QUERY_API_HOST:QUERY_API_PORT."""

from __future__ import annotations

from shared.http.gunicorn_server import GunicornServer, gunicorn_options
from shared.infra.auth_setup import build_verifier
from shared.infra.config import ConfigError, Settings
from shared.infra.metrics_dir import claim_metrics_dir
from shared.infra.structured_logging import configure_logging


def main() -> None:
    """Console script entry point."""
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    # Refuse to start here, before gunicorn forks, rather than in every worker.
    try:
        build_verifier(settings, settings.query_api_host)
    except ConfigError as exc:
        raise SystemExit(f"query-api: {exc}") from None
    # Before gunicorn forks: the workers inherit the directory through the environment.
    metrics_dir = claim_metrics_dir(settings.metrics_dir / "query", "api")
    options = gunicorn_options(
        settings.query_api_host,
        settings.query_api_port,
        settings.query_api_workers,
        settings.log_level,
        metrics_dir,
        # Waiting reads (?min_version) may hold READ_YOUR_WRITES_MAX_WAITERS threads; the
        # usual 4 stay free for every other request.
        threads=4 + settings.read_your_writes_max_waiters,
    )
    GunicornServer("query_service.http.app:create_app()", options).run()
