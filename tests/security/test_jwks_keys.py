"""Key sources: a JWKS served over real HTTP (fetched again on an unknown kid, at most once a
minute) and a PEM key file, through the verifier the services use."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shared.infra import token_keys
from shared.infra.token_keys import JwksUrl, KeyFile, allowed_algorithms
from shared.infra.tokens import InvalidToken, TokenVerifier

ISSUER, AUDIENCE = "https://idp.test/", "event-sourced-orders"
ALGORITHMS = allowed_algorithms(["ES256", "RS256"])


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 that counts how often it is asked."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, kid: str, key: ec.EllipticCurvePrivateKey) -> None:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
        self.keys.append({**jwk, "kid": kid, "use": "sig", "alg": "ES256"})


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.server.shutdown()


def signed(key: Any, kid: str | None, algorithm: str = "ES256") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "svc", "exp": now + 300, "iat": now}
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def test_a_known_kid_verifies_and_the_set_is_fetched_once(jwks: JwksServer) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwks.publish("k1", key)
    verifier = TokenVerifier(JwksUrl(jwks.url, ALGORITHMS), ISSUER, AUDIENCE, cache_size=0)
    assert verifier.verify(signed(key, "k1")).sub == "svc"
    assert verifier.verify(signed(key, "k1")).sub == "svc"
    assert jwks.fetches == 1


def test_unknown_kids_refetch_at_most_once_a_minute_then_a_rotated_key_is_found(
    jwks: JwksServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    jwks.publish("old", old)
    source = JwksUrl(jwks.url, ALGORITHMS)
    verifier = TokenVerifier(source, ISSUER, AUDIENCE, cache_size=0)
    verifier.verify(signed(old, "old"))
    jwks.publish("new", new)  # the provider rotates
    clock = [time.monotonic()]
    monkeypatch.setattr(token_keys.time, "monotonic", lambda: clock[0])
    for forged_kid in ("made-up-1", "made-up-2", "new"):
        with pytest.raises(InvalidToken, match="unknown key"):
            verifier.verify(signed(new, forged_kid))
    assert jwks.fetches == 1, "unknown kids within the minute must not reach the provider"
    clock[0] += token_keys.JWKS_REFETCH_INTERVAL_S
    assert verifier.verify(signed(new, "new")).sub == "svc"
    assert jwks.fetches == 2


def test_a_pem_key_file_verifies_its_own_algorithm_only(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "idp.pem").write_bytes(pem)
    verifier = TokenVerifier(KeyFile(tmp_path / "idp.pem", ALGORITHMS), ISSUER, AUDIENCE)
    assert verifier.verify(signed(rsa_key, None, "RS256")).sub == "svc"
    # The same key under another algorithm the list allows is still refused: RS512 is not
    # what this key verifies here (RS256 is the first RSA algorithm allowed).
    with pytest.raises(InvalidToken, match="algorithm"):
        TokenVerifier(
            KeyFile(tmp_path / "idp.pem", allowed_algorithms(["RS256", "RS512"])),
            ISSUER,
            AUDIENCE,
        ).verify(signed(rsa_key, None, "RS512"))
    # An HS256 token using the PEM bytes as its secret is refused before any HMAC check.
    forged = jwt.encode(
        {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": int(time.time()) + 60},
        "a-32-byte-secret-for-the-test!!!",
        algorithm="HS256",
    )
    with pytest.raises(InvalidToken):
        verifier.verify(forged)


def test_symmetric_algorithms_are_refused_in_the_configuration() -> None:
    for names in (["HS256"], ["none"], ["ES256", "HS512"], []):
        with pytest.raises(ValueError, match="asymmetric"):
            allowed_algorithms(names)
