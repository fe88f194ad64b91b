"""`orders-console`: serve the console with gunicorn on CONSOLE_HOST:CONSOLE_PORT.

One worker process: the metric samples and the index follower live in its memory; threads
serve the pages.
"""

from __future__ import annotations

from ops.console.config import ConsoleSettings
from shared.http.gunicorn_server import GunicornServer, gunicorn_options
from shared.infra.auth_setup import build_verifier
from shared.infra.config import ConfigError
from shared.infra.structured_logging import configure_logging


def main() -> None:
    """Console script entry point."""
    try:
        settings = ConsoleSettings.from_env()
        configure_logging(settings.service.log_level)
        # Refuses a non-loopback address in dev mode, as the APIs do.
        build_verifier(settings.service, settings.host)
    except ConfigError as exc:
        raise SystemExit(f"orders-console: {exc}") from None
    options = gunicorn_options(settings.host, settings.port, 1, settings.service.log_level, None, 8)
    GunicornServer("ops.console.app:create_app()", options).run()
