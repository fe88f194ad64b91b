"""`command-api`: serve the command service with gunicorn on COMMAND_API_HOST:COMMAND_API_PORT."""

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
        build_verifier(settings, settings.command_api_host)
    except ConfigError as exc:
        raise SystemExit(f"command-api: {exc}") from None
    # Before gunicorn forks: the workers inherit the directory through the environment.
    metrics_dir = claim_metrics_dir(settings.metrics_dir / "command", "api")
    options = gunicorn_options(
        settings.command_api_host,
        settings.command_api_port,
        settings.command_api_workers,
        settings.log_level,
        metrics_dir,
    )
    GunicornServer("command_service.http.app:create_app()", options).run()
