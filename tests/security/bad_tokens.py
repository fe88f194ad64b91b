"""Tokens an attacker or a broken client might send, built by hand (PyJWT, cryptography, base64).

Each is refused by the services on the data dir whose dev key they name or imitate.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared.infra.dev_keys import DEV_ISSUER, ensure_dev_keys, jwks_path
from tests.support.auth import AUDIENCE

LEEWAY_S = 30  # what the services allow for clock skew (shared/infra/tokens.py)


def b64(data: bytes) -> str:
    """base64url without padding, as JWS segments are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    return b64(json.dumps(value, separators=(",", ":")).encode())


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims the services accept (admin), with `overrides`; a None override removes a claim."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": DEV_ISSUER,
        "aud": AUDIENCE,
        "sub": "attacker",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": str(uuid.uuid4()),
        "scope": "admin",
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def dev_signed(data_dir: Path, payload: dict[str, Any], **headers: Any) -> str:
    """Signed with the services' own dev key (kid and all, unless `headers` say otherwise)."""
    key = ensure_dev_keys(data_dir)
    return jwt.encode(
        payload, key.private_key, algorithm="ES256", headers={"kid": key.kid, **headers}
    )


def attacker_signed(payload: dict[str, Any], **headers: Any) -> str:
    """Signed with a fresh key of the attacker's."""
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(payload, key, algorithm="ES256", headers=headers)


def alg_none(data_dir: Path) -> str:
    """No signature at all: `alg: none` and an empty third segment."""
    kid = ensure_dev_keys(data_dir).kid
    return f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{segment(claims())}."


def hs256_with(secret: bytes, kid: str) -> str:
    """HS256 keyed with `secret`: the public key confused for a shared secret."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(claims())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def public_pem(data_dir: Path) -> bytes:
    key = ensure_dev_keys(data_dir).private_key.public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def tampered(token: str, **changes: Any) -> str:
    """The token's payload changed (e.g. more scopes), its signature kept."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{segment({**decoded, **changes})}.{signature}"


def deeply_nested_header(data_dir: Path) -> str:
    """A header nested 2,000 deep: more than the JSON parser's recursion allows."""
    kid = ensure_dev_keys(data_dir).kid
    header = f'{{"alg":"ES256","kid":"{kid}","x":' + "[" * 2000 + "]" * 2000 + "}"
    return f"{b64(header.encode())}.{segment(claims())}.{b64(b'x' * 64)}"


def catalog(data_dir: Path) -> dict[str, str]:
    """Every refused token by name (the dev key must exist: start the services first)."""
    now = int(time.time())
    key = ensure_dev_keys(data_dir)
    attacker_jwk = json.loads(
        jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    )
    old = claims(iat=now - 7200, nbf=now - 7200, exp=now - LEEWAY_S - 30)
    return {
        "malformed": "not-a-jwt",
        "garbage-segments": "eyJ.eyJ.x",
        "alg-none": alg_none(data_dir),
        "hs256-with-jwks-bytes": hs256_with(jwks_path(data_dir).read_bytes(), key.kid),
        "hs256-with-pem-bytes": hs256_with(public_pem(data_dir), key.kid),
        "unknown-kid": dev_signed(data_dir, claims(), kid="no-such-key"),
        "no-kid": jwt.encode(claims(), key.private_key, algorithm="ES256"),
        "right-kid-wrong-key": attacker_signed(claims(), kid=key.kid),
        "tampered-payload": tampered(dev_signed(data_dir, claims(scope="read:own")), scope="admin"),
        "expired-beyond-leeway": dev_signed(data_dir, old),
        "nbf-in-the-future": dev_signed(data_dir, claims(nbf=now + LEEWAY_S + 90)),
        "no-exp": dev_signed(data_dir, claims(exp=None)),
        "no-sub": dev_signed(data_dir, claims(sub=None)),
        "empty-sub": dev_signed(data_dir, claims(sub="")),
        "wrong-iss": dev_signed(data_dir, claims(iss="https://evil.example")),
        "wrong-aud": dev_signed(data_dir, claims(aud="another-service")),
        "jku-header": dev_signed(data_dir, claims(), jku="http://evil.example/jwks"),
        "jwk-header": attacker_signed(claims(), jwk=attacker_jwk),
        "x5u-header": dev_signed(data_dir, claims(), x5u="http://evil.example/cert"),
        "alg-swapped-to-es512": tampered_header(dev_signed(data_dir, claims()), alg="ES512"),
        "deeply-nested-header": deeply_nested_header(data_dir),
    }


REFUSED = (
    "malformed",
    "garbage-segments",
    "alg-none",
    "hs256-with-jwks-bytes",
    "hs256-with-pem-bytes",
    "unknown-kid",
    "no-kid",
    "right-kid-wrong-key",
    "tampered-payload",
    "expired-beyond-leeway",
    "nbf-in-the-future",
    "no-exp",
    "no-sub",
    "empty-sub",
    "wrong-iss",
    "wrong-aud",
    "jku-header",
    "jwk-header",
    "x5u-header",
    "alg-swapped-to-es512",
    "deeply-nested-header",
)


def tampered_header(token: str, **changes: Any) -> str:
    """The token's header changed, its payload and signature kept."""
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    return f"{segment({**decoded, **changes})}.{payload}.{signature}"
