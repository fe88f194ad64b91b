"""AUTH_MODE=dev: a local ES256 signing key under $DATA_DIR/auth/, and tokens signed with it.

The services verify dev tokens exactly as they verify an identity provider's: the public half
is written as jwks.json and read through the same key-file source. Only the key is local.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

DEV_ISSUER = "urn:event-sourced-orders:dev"
SIGNING_KEY_FILE = "dev-signing-key.pem"
JWKS_FILE = "jwks.json"
ADMIN_TOKEN_FILE = "admin.token"


@dataclass(frozen=True)
class SigningKey:
    """The dev private key and the kid its public JWK is published under."""

    kid: str
    private_key: ec.EllipticCurvePrivateKey


def auth_dir(data_dir: Path) -> Path:
    """Where dev mode keeps its key pair and minted token files."""
    return data_dir / "auth"


def ensure_dev_keys(data_dir: Path) -> SigningKey:
    """Create the key pair on first use (safe when several processes start at once)."""
    folder = auth_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(folder / ".keys.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pem_path = folder / SIGNING_KEY_FILE
        if not pem_path.exists():
            private_key = ec.generate_private_key(ec.SECP256R1())
            pem = private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_private(pem_path, pem)
            _write_public(folder / JWKS_FILE, _jwks(private_key))
        return load_signing_key(data_dir)


def load_signing_key(data_dir: Path) -> SigningKey:
    """The existing dev key (FileNotFoundError if dev mode never started here)."""
    pem = (auth_dir(data_dir) / SIGNING_KEY_FILE).read_bytes()
    private_key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{SIGNING_KEY_FILE} is not an EC private key")
    return SigningKey(_thumbprint(private_key), private_key)


def jwks_path(data_dir: Path) -> Path:
    """The public half, as the services' key file in dev mode."""
    return auth_dir(data_dir) / JWKS_FILE


def mint_token(
    key: SigningKey,
    *,
    sub: str,
    scopes: Iterable[str],
    issuer: str,
    audience: str,
    ttl_s: int = 3600,
    customer_id: str | None = None,
    client_id: str | None = None,
    extra_claims: dict[str, Any] | None = None,
) -> str:
    """A signed ES256 token for `sub` with these scopes, valid for `ttl_s` seconds."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": audience,
        "sub": sub,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": str(uuid.uuid4()),
        "scope": " ".join(scopes),
    }
    if customer_id is not None:
        claims["customer_id"] = customer_id
    if client_id is not None:
        claims["azp"] = client_id
    claims.update(extra_claims or {})
    return jwt.encode(claims, key.private_key, algorithm="ES256", headers={"kid": key.kid})


def write_token_file(path: Path, token: str) -> None:
    """Write a token readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, token.encode() + b"\n")


def write_shared_token_file(path: Path, token: str) -> None:
    """Write a token another user may read: the Prometheus container runs as its own user."""
    # Only for a metrics:read token. The folder (0700 in dev mode, a volume only the stack
    # mounts in compose) still keeps everyone else out.
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_private(path, token.encode() + b"\n")
    path.chmod(0o644)


def _jwks(private_key: ec.EllipticCurvePrivateKey) -> bytes:
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    jwk.update(kid=_thumbprint(private_key), alg="ES256", use="sig")
    return json.dumps({"keys": [jwk]}, indent=2).encode() + b"\n"


def _thumbprint(private_key: ec.EllipticCurvePrivateKey) -> str:
    # RFC 7638: the kid is derived from the key, so both services agree on it without talking.
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    canonical = json.dumps(
        {k: jwk[k] for k in ("crv", "kty", "x", "y")}, separators=(",", ":"), sort_keys=True
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
