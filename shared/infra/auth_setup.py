"""Turning AUTH_* settings into a token verifier and a service token, the same in every mode.

AUTH_MODE=jwt (the default) needs an issuer, an audience and a key source, or refuses to
start. AUTH_MODE=dev creates a local key pair on first start and verifies through the very
same code; it refuses to serve on anything but a loopback address.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from shared.infra.config import ConfigError, Settings
from shared.infra.dev_keys import DEV_ISSUER, ensure_dev_keys, jwks_path, mint_token
from shared.infra.token_keys import JwksUrl, KeyFile, KeySource, KeySourceError, allowed_algorithms
from shared.infra.tokens import TokenVerifier

# A service token minted in dev mode lives this long and is renewed well before it ends.
DEV_SERVICE_TOKEN_TTL_S = 12 * 3600
_RENEW_MARGIN_S = 600

TokenProvider = Callable[[], str | None]


def issuer_of(settings: Settings) -> str:
    """The issuer tokens must name (dev mode has a fixed default)."""
    if settings.auth_issuer:
        return settings.auth_issuer
    if settings.auth_mode == "dev":
        return DEV_ISSUER
    raise ConfigError("AUTH_ISSUER must be set when AUTH_MODE=jwt")


def build_verifier(settings: Settings, bind_host: str) -> TokenVerifier:
    """The verifier for this process; ConfigError when the settings cannot be made safe."""
    try:
        algorithms = allowed_algorithms(settings.auth_algorithms)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    issuer = issuer_of(settings)
    if not settings.auth_audience:
        raise ConfigError("AUTH_AUDIENCE must not be empty")
    keys: KeySource
    if settings.auth_mode == "dev":
        require_loopback(bind_host)
        ensure_dev_keys(settings.data_dir)
        keys = _key_file(jwks_path(settings.data_dir), algorithms)
    elif settings.auth_jwks_url:
        keys = JwksUrl(settings.auth_jwks_url, algorithms)
    elif settings.auth_public_key_file is not None:
        keys = _key_file(settings.auth_public_key_file, algorithms)
    else:
        raise ConfigError("AUTH_MODE=jwt needs AUTH_JWKS_URL or AUTH_PUBLIC_KEY_FILE")
    return TokenVerifier(keys, issuer, settings.auth_audience)


def require_loopback(host: str) -> None:
    """Dev mode serves this machine only: its signing key sits in the data folder."""
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise ConfigError(
        f"AUTH_MODE=dev refuses to listen on {host!r}: bind a loopback address "
        "(127.0.0.1) or use AUTH_MODE=jwt with a real identity provider"
    )


def service_token(settings: Settings, sub: str, scopes: Iterable[str]) -> TokenProvider:
    """The bearer token a service sends to another: COMMAND_API_TOKEN_FILE, re-read when it
    changes; in dev mode without that file, one minted locally with `scopes`."""
    return token_from(settings, settings.command_api_token_file, sub, scopes)


def token_from(
    settings: Settings, token_file: Path | None, sub: str, scopes: Iterable[str]
) -> TokenProvider:
    """`token_file`'s token, re-read when it changes; in dev mode without it, a minted one."""
    if token_file is not None:
        return _FileToken(token_file)
    if settings.auth_mode == "dev":
        return _DevToken(settings, sub, tuple(scopes))
    return lambda: None


def mint_local_token(
    settings: Settings,
    *,
    sub: str,
    scopes: Iterable[str],
    ttl_s: int,
    customer_id: str | None = None,
    client_id: str | None = None,
) -> str:
    """A token signed with $DATA_DIR's dev key (made on first use), for these settings'
    issuer (the dev issuer unless AUTH_ISSUER is set) and audience."""
    return mint_token(
        ensure_dev_keys(settings.data_dir),
        sub=sub,
        scopes=scopes,
        issuer=settings.auth_issuer or DEV_ISSUER,
        audience=settings.auth_audience,
        ttl_s=ttl_s,
        customer_id=customer_id,
        client_id=client_id,
    )


def _key_file(path: Path, algorithms: frozenset[str]) -> KeyFile:
    try:
        return KeyFile(path, algorithms)
    except KeySourceError as exc:
        raise ConfigError(str(exc)) from None


class _FileToken:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[float, str | None] = (-1.0, None)

    def __call__(self) -> str | None:
        try:
            mtime = self._path.stat().st_mtime
            if mtime != self._seen[0]:
                self._seen = (mtime, self._path.read_text().strip() or None)
        except OSError:
            return None
        return self._seen[1]


class _DevToken:
    def __init__(self, settings: Settings, sub: str, scopes: tuple[str, ...]) -> None:
        self._settings = settings
        self._sub = sub
        self._scopes = scopes
        self._token: tuple[float, str] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> str | None:
        with self._lock:
            if self._token is None or time.time() > self._token[0] - _RENEW_MARGIN_S:
                token = mint_local_token(
                    self._settings,
                    sub=self._sub,
                    scopes=self._scopes,
                    ttl_s=DEV_SERVICE_TOKEN_TTL_S,
                    client_id=self._sub,
                )
                self._token = (time.time() + DEV_SERVICE_TOKEN_TTL_S, token)
            return self._token[1]
