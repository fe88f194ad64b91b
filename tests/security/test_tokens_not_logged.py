"""Bearer tokens never reach a log: the real services at DEBUG are sent valid, tampered,
garbage and otherwise refused tokens, and no log file of the run holds any of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.contract.principal import ADMIN, ORDERS_WRITE, READ_OWN
from tests.security.bad_tokens import catalog, tampered
from tests.security.system import SecuritySystem

LINES = [{"product_id": "p-1", "quantity": 1, "unit_price": "1.00"}]
# Enough of a signature or payload to be worth stealing; shorter parts (a header) are not secret.
SECRET_PART_LENGTH = 16


@pytest.fixture(scope="module")
def security_service_env() -> dict[str, str]:
    return {"LOG_LEVEL": "DEBUG"}  # the most the services would ever write


def traffic(system: SecuritySystem, tokens: list[str]) -> None:
    """Reads, commands and errors on both services with each token, in every place a client
    might put it (the Authorization header, a query parameter, a cookie)."""
    for token in tokens:
        auth = {"Authorization": f"Bearer {token}"}
        system.command("GET", "/events/head", headers=auth)
        system.command("GET", "/orders/o-log-1", headers=auth)
        system.command("GET", "/nowhere", headers=auth)
        order = {"customer_id": "c-log", "lines": LINES}
        system.command("POST", "/orders", json=order, headers={**auth, "Idempotency-Key": "k"})
        system.command("POST", "/orders", data="{broken", headers=auth)
        system.command("GET", "/orders", params={"access_token": token})
        system.query("GET", "/orders", headers=auth)
        system.query("GET", "/accounts/c-log", headers=auth)
        system.query("GET", "/orders", params={"access_token": token}, cookies={"token": token})


def secret_parts(token: str) -> set[str]:
    """The token and each of its segments long enough to matter (signature, payload)."""
    return {token} | {part for part in token.split(".") if len(part) >= SECRET_PART_LENGTH}


def test_no_log_file_contains_a_token(security_system: SecuritySystem) -> None:
    system = security_system
    admin = system.token("log-admin", [ADMIN])
    customer = system.token("log-user", [ORDERS_WRITE, READ_OWN], "c-log")
    refused = catalog(system.workdir)
    tokens = [
        admin,
        customer,
        tampered(customer, scope="admin"),
        "garbage-" + "Zm9vYmFy" * 8,
        *refused.values(),
    ]
    traffic(system, tokens)
    system.runner.stop_all()  # every line written and flushed

    logs = sorted(system.workdir.rglob("*.log"))
    assert {path.name for path in logs} >= {"command-api.log", "query-api.log"}
    assert all(path.stat().st_size > 0 for path in logs)
    leaks = [
        (path.name, part[:12])
        for path in logs
        for part in set().union(*map(secret_parts, tokens))
        if part in read(path)
    ]
    assert leaks == []


def read(path: Path) -> str:
    return path.read_text(errors="replace")
