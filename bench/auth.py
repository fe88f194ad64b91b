"""Authentication as the benchmarks run it: switched on, as in production.

Every service a benchmark starts runs with AUTH_MODE=dev on the benchmark's work folder
(bench.services.Services does that), so it verifies bearer tokens signed by the dev key in
<folder>/auth/ through the same TokenVerifier as an identity provider's tokens. Every request
the benchmarks send carries an admin token minted here with that key; the events the
benchmarks write directly carry an admin principal in their metadata, as every event written
through the command API does.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from shared.contract.principal import ADMIN, Principal
from shared.infra.auth_setup import issuer_of
from shared.infra.config import Settings
from shared.infra.dev_keys import DEV_ISSUER, ensure_dev_keys, mint_token

AUTH_ENV = {"AUTH_MODE": "dev"}
BENCH_SUB = "bench-admin"
# Longer than the longest benchmark (the full projector run), with room to spare.
TOKEN_TTL_S = 6 * 3600


def auth_settings(data_dir: Path) -> Settings:
    """The settings a service started by the benchmarks on `data_dir` verifies tokens with."""
    return Settings.from_env({**os.environ, **AUTH_ENV, "DATA_DIR": str(data_dir)})


def admin_token(
    data_dir: Path, sub: str = BENCH_SUB, scopes: Iterable[str] = (ADMIN,), ttl_s: int = TOKEN_TTL_S
) -> str:
    """A token the services on `data_dir` accept (the dev key pair is made on first use)."""
    settings = auth_settings(data_dir)
    return mint_token(
        ensure_dev_keys(settings.data_dir),
        sub=sub,
        scopes=scopes,
        issuer=issuer_of(settings),
        audience=settings.auth_audience,
        ttl_s=ttl_s,
    )


def authorization(data_dir: Path) -> str:
    """The Authorization header value for an admin token on `data_dir`."""
    return f"Bearer {admin_token(data_dir)}"


def bench_principal() -> Principal:
    """The admin caller recorded in the metadata of events the benchmarks write directly."""
    return Principal(
        sub=BENCH_SUB, iss=DEV_ISSUER, scopes=frozenset({ADMIN}), jti=str(uuid.uuid4())
    )
