"""The console's settings, read once from environment variables (as shared.infra.config does)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shared.infra.config import ConfigError, Settings

DEFAULT_PORT = 8003
# The scopes of the token the console reads with (minted in dev mode, else CONSOLE_TOKEN_FILE).
CONSOLE_READ_SCOPES = ("read:all", "events:read", "metrics:read")


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the console listens, the two APIs it reads, its token and its own audit index."""

    service: Settings  # auth mode, keys, issuer, data dir: shared with the services
    host: str
    port: int
    command_api_url: str
    query_api_url: str
    token_file: Path | None
    search_url: str
    secret_key_file: Path
    sample_interval_s: float
    index_interval_s: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ConsoleSettings:
        """Read CONSOLE_* (and the services' AUTH_*, DATA_DIR, READ_MODEL_URL) from `environ`."""
        env = os.environ if environ is None else environ
        service = Settings.from_env(env)
        console_dir = service.data_dir / "console"
        return cls(
            service=service,
            host=env.get("CONSOLE_HOST", "127.0.0.1"),
            port=_int(env, "CONSOLE_PORT", DEFAULT_PORT),
            command_api_url=service.command_api_url,
            query_api_url=env.get("QUERY_API_URL", "http://127.0.0.1:8002").rstrip("/"),
            token_file=Path(env["CONSOLE_TOKEN_FILE"]) if env.get("CONSOLE_TOKEN_FILE") else None,
            search_url=env.get("CONSOLE_SEARCH_URL") or default_search_url(service, console_dir),
            secret_key_file=Path(
                env.get("CONSOLE_SECRET_KEY_FILE") or console_dir / "session-secret.key"
            ),
            sample_interval_s=_int(env, "CONSOLE_SAMPLE_INTERVAL_MS", 5000) / 1000,
            index_interval_s=_int(env, "CONSOLE_INDEX_INTERVAL_MS", 1000) / 1000,
        )


def default_search_url(service: Settings, console_dir: Path) -> str:
    """PostgreSQL full-text when the read model is on PostgreSQL (its own tables), else FTS5."""
    if service.read_model_url.startswith("postgresql"):
        return service.read_model_url
    return f"sqlite:///{console_dir / 'search.db'}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name) or ""
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if not 1 <= value <= 10**7:
        raise ConfigError(f"{name} must be between 1 and 10000000, got {value}")
    return value
