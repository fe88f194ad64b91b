"""Running a Flask app factory under gunicorn, configured in code (both services use it)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication


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


def gunicorn_options(host: str, port: int, workers: int) -> dict[str, Any]:
    """Options shared by both services' gunicorn servers."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "gthread",
        "threads": 4,
        "timeout": 30,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
    }
