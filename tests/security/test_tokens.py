"""Bad bearer tokens against the real services: always a 4xx with the RFC 6750 challenge,
never a 5xx, never a write."""

from __future__ import annotations

import time

import pytest
import requests

from shared.contract.principal import ADMIN
from tests.security.bad_tokens import LEEWAY_S, REFUSED, catalog, claims, dev_signed
from tests.security.system import SecuritySystem

REALM = 'Bearer realm="event-sourced-orders"'
PROBLEM = "application/problem+json"
ORDER = {
    "customer_id": "c-1",
    "lines": [{"product_id": "p-1", "quantity": 1, "unit_price": "1.00"}],
}


@pytest.fixture(scope="module")
def tokens(security_system: SecuritySystem) -> dict[str, str]:
    return catalog(security_system.workdir)


def send(system: SecuritySystem, where: str, authorization: str | None) -> requests.Response:
    """A protected read of either API, or a command, with this Authorization header."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    if where == "command-read":
        return system.command("GET", "/events/head", headers=headers)
    if where == "command-write":
        return system.command("POST", "/orders", json=ORDER, headers=headers)
    return system.query("GET", "/orders", headers=headers)


def assert_challenge(response: requests.Response, error: str | None) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"] == PROBLEM
    assert response.json()["status"] == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(REALM), challenge
    if error is None:
        assert "error=" not in challenge, challenge
    else:
        assert f'error="{error}"' in challenge, challenge


WHERE = ["command-read", "command-write", "query-read"]


@pytest.mark.parametrize("where", WHERE)
def test_no_token_is_401_with_a_bare_challenge(security_system: SecuritySystem, where: str) -> None:
    assert_challenge(send(security_system, where, None), error=None)


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize("name", REFUSED)
def test_a_refused_token_is_401_invalid_token_and_writes_nothing(
    security_system: SecuritySystem, tokens: dict[str, str], where: str, name: str
) -> None:
    head = security_system.head_position()
    assert_challenge(send(security_system, where, f"Bearer {tokens[name]}"), "invalid_token")
    assert security_system.head_position() == head


@pytest.mark.parametrize("where", WHERE)
@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNzd29yZA==", "Bearer", "Bearer ", "Token abc", "bearer-abc"],
)
def test_another_scheme_or_no_token_after_bearer_is_invalid_token(
    security_system: SecuritySystem, where: str, authorization: str
) -> None:
    assert_challenge(send(security_system, where, authorization), "invalid_token")


@pytest.mark.parametrize("where", WHERE)
def test_an_oversized_token_is_a_4xx_not_a_5xx(security_system: SecuritySystem, where: str) -> None:
    # 10 KB: gunicorn refuses the header itself (431) before the app's 8 KB cap would (401).
    head = security_system.head_position()
    status = send(security_system, where, "Bearer " + "a" * 10_240).status_code
    assert 400 <= status < 500, status
    assert security_system.head_position() == head


def test_the_scheme_name_is_case_insensitive(security_system: SecuritySystem) -> None:
    token = security_system.token("admin", [ADMIN])
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert send(security_system, "command-read", f"{scheme} {token}").status_code == 200


@pytest.mark.parametrize("where", ["command-read", "query-read"])
def test_clock_skew_within_the_leeway_is_accepted(
    security_system: SecuritySystem, where: str
) -> None:
    # The positive control for the expiry cases: 30 s either way is tolerated, not more.
    now = int(time.time())
    workdir = security_system.workdir
    baseline = dev_signed(workdir, claims())  # what every refused token differs from
    just_expired = dev_signed(workdir, claims(exp=now - LEEWAY_S // 2))
    not_quite_valid = dev_signed(workdir, claims(nbf=now + LEEWAY_S // 2))
    for token in (baseline, just_expired, not_quite_valid):
        assert send(security_system, where, f"Bearer {token}").status_code == 200
