"""The query side against the real command API (gunicorn, real HTTP): the account and order
events it serves parse, fill a gap in an account, and rebuild the read model from /events.

The other query tests build envelopes from the event contract; this one checks that the
command service keeps to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
from sqlalchemy import select

from query_service.projection.parsing import parse_raw
from query_service.projector.applier import EventApplier
from query_service.projector.command_api import CommandApiClient
from query_service.read_model.tables import account_statement
from query_service.read_model.views import ReadViews
from query_service.rebuild import rebuild_read_model
from shared.contract.principal import EVENTS_READ
from shared.infra.db import write_transaction
from shared.infra.dev_keys import DEV_ISSUER
from tests.integration.query_support import new_read_model
from tests.support.auth import token
from tests.support.processes import HttpService, ServiceRunner


def _drive(base_url: str, headers: dict[str, str]) -> None:
    """Open accounts, pay an order from one, deposit, cancel the order (a refund), as admin."""

    def call(method: str, path: str, body: dict[str, Any], status: int) -> None:
        response = requests.request(method, base_url + path, json=body, headers=headers, timeout=10)
        assert response.status_code == status, response.text

    call("POST", "/accounts", {"customer_id": "c-1", "initial_deposit_cents": 10_000}, 201)
    lines = [{"product_id": "p-1", "quantity": 2, "unit_price": "12.50"}]
    call("POST", "/orders", {"order_id": "o-1", "customer_id": "c-1", "lines": lines}, 201)
    call("POST", "/orders/o-1/status", {"status": "PAID"}, 200)
    call("POST", "/accounts/c-1/deposits", {"amount_cents": 500, "deposit_id": "d-1"}, 200)
    call("DELETE", "/orders/o-1", {"reason": "changed my mind"}, 200)
    call("POST", "/accounts", {"customer_id": "c-2"}, 201)


def test_account_events_of_the_command_api_repair_gaps_and_rebuild(
    services: ServiceRunner, command_api: HttpService, tmp_path: Path
) -> None:
    _drive(command_api.base_url, services.admin_headers)
    reader = token(services.workdir, "query-test", [EVENTS_READ])
    source = CommandApiClient(command_api.base_url, token=lambda: reader)

    events = [parse_raw(raw) for raw in source.account_events("c-1")]
    assert [type(e).__name__ for e in events] == [
        "AccountOpened", "FundsDeposited", "AccountDebited", "FundsDeposited", "AccountCredited",
    ]  # fmt: skip
    assert source.account_events("nobody") == []

    # Only the opening and the last event reached the read model: the rest is read back.
    repaired = new_read_model(f"sqlite:///{tmp_path / 'repaired.db'}")
    applier = EventApplier(gap_source=source)
    with write_transaction(repaired) as conn, applier.batch(conn) as batch:
        batch.apply(events[0])
        batch.apply(events[-1])
    assert applier.repairs.repaired_events == 3

    rebuilt = new_read_model(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    report = rebuild_read_model(rebuilt, source, "orders.events", None)
    assert (report.parked, report.applied) == (0, report.events)

    for engine in (repaired, rebuilt):
        account = ReadViews(engine).account("c-1")
        assert account is not None
        totals = ("balance_cents", "deposited_cents", "debited_cents", "credited_cents")
        assert [account[name] for name in totals] == [10_500, 10_500, 2500, 2500]
        with engine.connect() as conn:
            lines = conn.execute(
                select(account_statement.c.kind, account_statement.c.amount_cents)
                .where(account_statement.c.customer_id == "c-1")
                .order_by(account_statement.c.version)
            )
            assert [tuple(line) for line in lines] == [
                ("DEPOSIT", 10_000), ("DEBIT", -2500), ("DEPOSIT", 500), ("CREDIT", 2500),
            ]  # fmt: skip
    customer = ReadViews(rebuilt).customer("c-2")
    assert customer is not None and customer.summary is None
    assert customer.account is not None and customer.account["balance_cents"] == 0

    # The command side records who acted in each event's metadata; the history carries it.
    history = ReadViews(rebuilt).history("o-1")
    by = [(h["by_sub"], h["by_iss"], h["by_customer_id"], h["by_client_id"]) for h in history]
    assert by == [("test-admin", DEV_ISSUER, None, None)] * 3
