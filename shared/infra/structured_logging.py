"""One JSON object per log line, so logs can be shipped and queried without parsing prose."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from shared.infra.log_context import scope_fields

_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as JSON, including any `extra=` fields given to the logger and the
    correlation and trace ids in scope (log_context.py) unless the record names its own."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(scope_fields())
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO") -> None:
    """Send JSON lines to stderr at the given level (idempotent)."""
    root = logging.getLogger()
    root.setLevel(level)
    # kafka-python is chatty at INFO about every reconnect attempt.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
    # Under gunicorn the handler is already there (see shared/http/gunicorn_server.py).
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
