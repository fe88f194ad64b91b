"""`command-api`: serve the command service with gunicorn on COMMAND_API_HOST:COMMAND_API_PORT."""

from __future__ import annotations

from shared.config import Settings
from shared.gunicorn_server import GunicornServer, gunicorn_options


def main() -> None:
    """Console script entry point."""
    settings = Settings.from_env()
    options = gunicorn_options(
        settings.command_api_host, settings.command_api_port, settings.command_api_workers
    )
    GunicornServer("command_service.app:create_app()", options).run()
