"""Bearer tokens for tests: signed with the dev key of a data dir, as `orders-admin token` does.

The services under test run with AUTH_MODE=dev on that data dir, so they verify these tokens
through the same code as any identity provider's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import requests

from shared.infra.dev_keys import DEV_ISSUER, ensure_dev_keys, mint_token

AUDIENCE = "event-sourced-orders"
ADMIN_SCOPES = ("admin",)


def token(
    data_dir: Path,
    sub: str = "test-admin",
    scopes: Iterable[str] = ADMIN_SCOPES,
    customer_id: str | None = None,
    ttl_s: int = 3600,
) -> str:
    """A token the services on `data_dir` accept."""
    return mint_token(
        ensure_dev_keys(data_dir),
        sub=sub,
        scopes=scopes,
        issuer=DEV_ISSUER,
        audience=AUDIENCE,
        ttl_s=ttl_s,
        customer_id=customer_id,
    )


def bearer(
    data_dir: Path,
    sub: str = "test-admin",
    scopes: Iterable[str] = ADMIN_SCOPES,
    customer_id: str | None = None,
) -> dict[str, str]:
    """The Authorization header for such a token."""
    return {"Authorization": f"Bearer {token(data_dir, sub, scopes, customer_id)}"}


def api_session(headers: Mapping[str, str]) -> requests.Session:
    """A requests session that sends these (Authorization) headers with every request."""
    session = requests.Session()
    session.headers.update(headers)
    return session
