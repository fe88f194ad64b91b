"""Running a Flask app factory under gunicorn, configured in code (both services use it)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger


class GunicornServer(BaseApplication):  # type: ignore[misc]
    """Runs a Flask app factory under gunicorn with options set in code, not a config file."""

    def __init__(self, app_factory: str, options: dict[str, Any]) -> None:
        self.app_factory = app_factory
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        from gunicorn.util import import_app

        app: Flask = import_app(self.app_factory)
        return app


class AccessLogAwareLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger, which builds no access-log line when the access logger is off."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        # With a logconfig_dict, gunicorn formats every request's access atoms (about 8% of a
        # POST /orders worker's Python time) and only then finds the logger discards them.
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


def gunicorn_options(
    host: str,
    port: int,
    workers: int,
    log_level: str = "INFO",
    metrics_dir: Path | None = None,
    threads: int = 4,
) -> dict[str, Any]:
    """Options shared by both services' gunicorn servers.

    With `metrics_dir` (this server's claimed Prometheus directory) a dead worker's live
    gauges are dropped from it; its counters stay, so totals survive a worker restart.
    """
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 30,
        "graceful_timeout": 10,
        # Room for a large bearer token (8 KiB is the verifier's own cap), so that the app,
        # not gunicorn's HTML 431, answers an oversized one with a problem+json 401.
        "limit_request_field_size": 16384,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "logger_class": AccessLogAwareLogger,
        "logconfig_dict": json_logging_config(log_level),
    }
    if metrics_dir is not None:
        options["child_exit"] = _forget_dead_worker(metrics_dir)
    return options


def json_logging_config(log_level: str) -> dict[str, Any]:
    """A dictConfig giving gunicorn's own messages and the app's one JSON line each on stderr."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "shared.infra.structured_logging.JsonFormatter"}},
        "handlers": {"json_stderr": handler},
        # Replaces gunicorn's default root handler (plain text on stdout), which would print
        # every app log line a second time.
        "root": {"level": log_level, "handlers": ["json_stderr"]},
        "loggers": {
            "gunicorn.error": {
                "level": "WARNING",
                "handlers": ["json_stderr"],
                "propagate": False,
            },
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }


def _forget_dead_worker(metrics_dir: Path) -> Callable[[Any, Any], None]:
    def child_exit(_server: Any, worker: Any) -> None:
        # Imported here: the master must not load prometheus_client before the directory
        # variable is set, and it is set just before gunicorn starts.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, str(metrics_dir))  # type: ignore[no-untyped-call]

    return child_exit
