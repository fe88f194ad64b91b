"""The principal on every event: after a workload of several callers, each event of the log
names the token that caused it (sub, iss, customer_id, jti), and no request can say otherwise."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest

from shared.contract.principal import (
    ACCOUNTS_DEPOSIT,
    ACCOUNTS_WRITE,
    ADMIN,
    ORDERS_FULFIL,
    ORDERS_WRITE,
)
from shared.infra.dev_keys import DEV_ISSUER, ensure_dev_keys, mint_token
from tests.security.system import SecuritySystem
from tests.support.auth import AUDIENCE

LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "4.00"}]
FORGED = {"sub": "root", "iss": "urn:forged", "customer_id": "c-victim", "jti": "forged"}
SPOOFING_HEADERS = {
    "X-Principal": '{"sub": "root"}',
    "X-User-Id": "root",
    "X-Customer-Id": "c-victim",
    "X-Forwarded-User": "root",
    "X-Remote-User": "root",
    "X-Auth-Request-User": "root",
    "X-Authenticated-Userid": "root",
}


class Workload:
    """Sends commands, each with its own correlation id, remembering whose token sent it."""

    def __init__(self, system: SecuritySystem) -> None:
        self.system = system
        self.expected: dict[str, dict[str, str]] = {}

    def send(
        self, token: str, method: str, path: str, body: Any = None, **headers: str
    ) -> dict[str, Any]:
        correlation_id = f"corr-{uuid.uuid4().hex[:12]}"
        response = self.system.command(
            method,
            path,
            json=body,
            headers={
                "Authorization": f"Bearer {token}",
                "X-Correlation-ID": correlation_id,
                **headers,
            },
        )
        assert response.status_code in (200, 201), response.text
        self.expected[correlation_id] = recorded_principal(token)
        result: dict[str, Any] = response.json()
        return result


def recorded_principal(token: str) -> dict[str, str]:
    """What the event's metadata must name: the token's own claims, nothing else."""
    claims = jwt.decode(token, options={"verify_signature": False})
    principal = {"sub": claims["sub"], "iss": claims["iss"], "jti": claims["jti"]}
    if "customer_id" in claims:
        principal["customer_id"] = claims["customer_id"]
    return principal


@pytest.fixture(scope="module")
def workload(security_system: SecuritySystem) -> Workload:
    system, run = security_system, Workload(security_system)
    alice = system.token("user-alice", [ORDERS_WRITE, ACCOUNTS_WRITE], "c-alice")
    gateway = system.token("payment-gateway", [ACCOUNTS_DEPOSIT])
    warehouse = system.token("warehouse", [ORDERS_FULFIL])
    admin = system.token("support-staff", [ADMIN])
    # A token whose own claims try to name another principal: only sub/iss/... count.
    key = ensure_dev_keys(system.workdir)
    sneaky = mint_token(
        key,
        sub="user-bob",
        scopes=[ORDERS_WRITE],
        issuer=DEV_ISSUER,
        audience=AUDIENCE,
        customer_id="c-bob",
        extra_claims={"principal": FORGED, "metadata": {"principal": FORGED}},
    )

    run.send(alice, "POST", "/accounts", {"customer_id": "c-alice"})
    run.send(gateway, "POST", "/accounts/c-alice/deposits", {"amount": "50.00"})
    run.send(admin, "POST", "/accounts", {"customer_id": "c-bob", "initial_deposit": "20.00"})
    for n in range(3):
        order = {"order_id": f"o-a-{n}", "customer_id": "c-alice", "lines": LINES}
        run.send(alice, "POST", "/orders", order, **SPOOFING_HEADERS)
        run.send(alice, "POST", f"/orders/o-a-{n}/status", {"status": "PAID"})
    run.send(warehouse, "POST", "/orders/o-a-0/status", {"status": "SHIPPED"})
    run.send(warehouse, "POST", "/orders/o-a-0/status", {"status": "DELIVERED"})
    run.send(alice, "DELETE", "/orders/o-a-1", {"reason": "changed my mind"})
    run.send(sneaky, "POST", "/orders", {"order_id": "o-b", "customer_id": "c-bob", "lines": LINES})
    run.send(admin, "POST", "/orders/o-b/status", {"status": "PAID"}, **SPOOFING_HEADERS)
    return run


def test_every_event_names_the_token_that_caused_it(workload: Workload) -> None:
    events = workload.system.all_events()
    assert len(events) >= len(workload.expected)
    for event in events:
        correlation_id = event["metadata"]["correlation_id"]
        assert event["metadata"]["principal"] == workload.expected[correlation_id], event
    # Every command wrote at least one event, so every principal is on the record.
    assert {e["metadata"]["correlation_id"] for e in events} == set(workload.expected)
    principals = {e["metadata"]["principal"]["sub"] for e in events}
    assert principals == {"user-alice", "payment-gateway", "support-staff", "warehouse", "user-bob"}


@pytest.mark.parametrize(
    "extra",
    [
        {"principal": FORGED},
        {"metadata": {"principal": FORGED}},
        {"metadata": {"correlation_id": "forged"}},
    ],
)
def test_a_body_naming_a_principal_or_metadata_is_refused(
    workload: Workload, extra: dict[str, Any]
) -> None:
    system = workload.system
    head = system.head_position()
    body = {"customer_id": "c-alice", "lines": LINES, **extra}
    token = system.token("user-alice", [ORDERS_WRITE], "c-alice")
    response = system.command(
        "POST", "/orders", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 422, response.text
    assert set(extra) <= set(response.json()["errors"])
    assert system.head_position() == head
