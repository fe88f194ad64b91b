"""Serve bench.peer_app exactly as `command-api` serves the command service: the same
server class and options (shared.http.gunicorn_server), the same worker count setting
(COMMAND_API_WORKERS), on PEER_API_PORT, with its events in PEER_SQLITE_DBNAME.
"""

from __future__ import annotations

import inspect
import os

from shared.http.gunicorn_server import GunicornServer, gunicorn_options
from shared.infra.config import Settings


def main() -> None:
    settings = Settings.from_env()
    port = int(os.environ["PEER_API_PORT"])
    os.environ["PEER_SQLITE_DBNAME"]  # fail here, not in every worker, when it is missing
    extra: dict[str, object] = {}
    if "log_level" in inspect.signature(gunicorn_options).parameters:
        extra["log_level"] = settings.log_level  # the command API passes it too
    options = gunicorn_options(
        settings.command_api_host, port, settings.command_api_workers, **extra
    )
    GunicornServer("bench.peer_app:create_app()", options).run()


if __name__ == "__main__":
    main()
