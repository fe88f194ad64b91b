"""Where the keys that verify bearer tokens come from: a JWKS URL or a local key file.

Each key carries the one algorithm it verifies, derived from the key itself and the allowed
list (AUTH_ALGORITHMS): a token's `alg` header only has to agree with it, never chooses it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

log = logging.getLogger("shared.token_keys")

ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
# An unknown kid makes us fetch the JWKS again, but at most this often: a flood of tokens with
# made-up kids must not turn into a flood of requests to the identity provider.
JWKS_REFETCH_INTERVAL_S = 60.0
JWKS_TIMEOUT_S = 5.0
JWKS_MAX_BYTES = 1 << 20
_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


class KeySourceError(Exception):
    """A key source could not be read or holds no usable key."""


@dataclass(frozen=True)
class VerificationKey:
    """A public key, its id (None for a lone PEM key) and the one algorithm it verifies."""

    kid: str | None
    algorithm: str
    key: Any


class KeySource(Protocol):
    """Finds the key for a token's `kid` header."""

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """The key to verify with, or None if no key has that id."""


def allowed_algorithms(names: Iterable[str]) -> frozenset[str]:
    """Validate AUTH_ALGORITHMS: asymmetric algorithms only (never `none` or HS*)."""
    chosen = frozenset(name.strip() for name in names if name.strip())
    refused = sorted(chosen - ASYMMETRIC_ALGORITHMS)
    if refused or not chosen:
        raise ValueError(
            f"AUTH_ALGORITHMS may only name asymmetric algorithms "
            f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}); refused: {', '.join(refused) or '-'}"
        )
    return chosen


def algorithm_for(public_key: Any, declared: str | None, allowed: frozenset[str]) -> str | None:
    """The algorithm a key verifies: its declared `alg` if allowed, else the one its type fits."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        candidates = [_CURVE_ALGORITHMS.get(public_key.curve.name, "")]
    elif isinstance(public_key, rsa.RSAPublicKey):
        candidates = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        candidates = ["EdDSA"]
    else:
        return None
    if declared is not None:
        return declared if declared in candidates and declared in allowed else None
    return next((name for name in candidates if name in allowed), None)


def keys_from_jwks(
    document: Mapping[str, Any], allowed: frozenset[str]
) -> dict[str, VerificationKey]:
    """The usable signing keys of a JWKS document, by kid (keys for other uses are skipped)."""
    keys: dict[str, VerificationKey] = {}
    for entry in document.get("keys", []):
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
            continue
        try:
            public_key = jwt.PyJWK(dict(entry)).key
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            log.warning("skipping a JWKS key that cannot be read", extra={"kid": entry.get("kid")})
            continue
        algorithm = algorithm_for(public_key, entry.get("alg"), allowed)
        kid = entry.get("kid")
        if algorithm is None or not isinstance(kid, str):
            continue
        keys[kid] = VerificationKey(kid, algorithm, public_key)
    return keys


class KeyFile:
    """Keys from AUTH_PUBLIC_KEY_FILE: a PEM public key, or a JWKS document (JSON)."""

    def __init__(self, path: Path, allowed: frozenset[str]) -> None:
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise KeySourceError(f"cannot read {path}: {exc}") from exc
        self._lone: VerificationKey | None = None
        self._keys: dict[str, VerificationKey] = {}
        if raw.lstrip().startswith(b"{"):
            self._keys = keys_from_jwks(json.loads(raw), allowed)
        else:
            try:
                public_key = load_pem_public_key(raw)
            except ValueError as exc:
                raise KeySourceError(f"{path} is neither a PEM public key nor a JWKS") from exc
            algorithm = algorithm_for(public_key, None, allowed)
            if algorithm is not None:
                self._lone = VerificationKey(None, algorithm, public_key)
        if self._lone is None and not self._keys:
            raise KeySourceError(
                f"{path} holds no key for the allowed algorithms {sorted(allowed)}"
            )

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """A lone PEM key verifies any kid; a JWKS key only its own."""
        if self._lone is not None:
            return self._lone
        return self._keys.get(kid) if kid is not None else None


class JwksUrl:
    """Keys from AUTH_JWKS_URL, fetched at first use and again on an unknown kid (rate-limited)."""

    def __init__(self, url: str, allowed: frozenset[str]) -> None:
        self.url = url
        self._allowed = allowed
        self._keys: dict[str, VerificationKey] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def key_for(self, kid: str | None) -> VerificationKey | None:
        """The key with this kid, refetching the set if it is unknown and the last fetch is old."""
        if kid is None:
            return None
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            now = time.monotonic()
            if key is None and (
                self._fetched_at is None or now - self._fetched_at >= JWKS_REFETCH_INTERVAL_S
            ):
                self._fetched_at = now
                self._refetch()
                key = self._keys.get(kid)
        return key

    def _refetch(self) -> None:
        try:
            request = urllib.request.Request(self.url, headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=JWKS_TIMEOUT_S) as response:
                document = json.loads(response.read(JWKS_MAX_BYTES))
            self._keys = keys_from_jwks(document, self._allowed)
        except (OSError, ValueError) as exc:
            # Keep the keys we had: a passing outage of the provider must not lock everyone out.
            log.warning("fetching the JWKS failed", extra={"url": self.url, "error": repr(exc)})
