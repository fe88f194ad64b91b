"""Bearer token verification (RFC 6750 with JWTs): the one code path in every auth mode.

A verified token is cached (bounded LRU keyed by the token) until its `exp`, never past it,
so a client that repeats its token pays for the signature check once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import jwt

from shared.contract.principal import Principal
from shared.infra.token_keys import KeySource

LEEWAY_S = 30
MAX_TOKEN_BYTES = 8192
CACHE_SIZE = 10_000
# Headers that would let a token name its own key: an attacker's key, so never honoured.
_KEY_CARRYING_HEADERS = ("jku", "jwk", "x5u", "x5c")
_REQUIRED_CLAIMS = ["exp", "sub", "iss", "aud"]


class InvalidToken(Exception):
    """The token is not one we accept; the message says why, without echoing the token."""


class TokenVerifier:
    """Checks signature, issuer, audience, expiry and subject, and returns the Principal."""

    def __init__(
        self,
        keys: KeySource,
        issuer: str,
        audience: str,
        leeway_s: int = LEEWAY_S,
        cache_size: int = CACHE_SIZE,
    ) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, token: str) -> Principal:
        """The token's principal, or InvalidToken."""
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                if time.time() < hit[1]:
                    self._cache.move_to_end(token)
                    return hit[0]
                del self._cache[token]
        principal, expires = self._verify_signature_and_claims(token)
        with self._lock:
            self._cache[token] = (principal, expires)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def _verify_signature_and_claims(self, token: str) -> tuple[Principal, float]:
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken(f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token is not a well-formed JWT") from None
        if any(name in header for name in _KEY_CARRYING_HEADERS):
            raise InvalidToken("tokens that carry or point to their own key are refused")
        kid = header.get("kid")
        key = self.keys.key_for(kid if isinstance(kid, str) else None)
        if key is None:
            raise InvalidToken("the token is signed with an unknown key")
        if header.get("alg") != key.algorithm:
            raise InvalidToken("the token's algorithm is not the one its key verifies")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f"the token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise InvalidToken("the token's signature or claims do not verify") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidToken("the token's 'sub' claim is empty")
        return Principal.from_claims(claims), float(claims["exp"])
