"""Account rows are claimed by version: a writer that read a stale row (a zombie projector after
a rebalance) writes nothing, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from query_service.projection.accounts import project_account
from query_service.projection.events import AccountOpened, FundsDeposited
from query_service.projection.parsing import parse_event
from query_service.read_model.account_writer import load_account, write_account_changes
from shared.infra.db import write_transaction
from tests.integration.query_support import (
    OrderEventLog,
    project_directly,
    view_rows,
)


@pytest.fixture
def engine(read_model_engine: Engine) -> Engine:
    """A new read model on each backend."""
    return read_model_engine


def test_a_stale_writer_applies_nothing(engine: Engine) -> None:
    log = OrderEventLog()
    log.open_account("c-1", initial_deposit_cents=1000)
    opened, deposit = (parse_event(e) for e in log.envelopes)
    assert isinstance(opened, AccountOpened) and isinstance(deposit, FundsDeposited)
    project_directly(engine, log.envelopes)
    before = view_rows(engine)
    assert len(before["accounts"]) == 1 and len(before["account_statement"]) == 1

    # Both changes were computed from rows as they were before the other writer applied them.
    replay_open = project_account(None, opened)
    replay_deposit = project_account(replay_open.account, deposit)
    with write_transaction(engine) as conn:
        assert write_account_changes(conn, replay_open) is False
        assert write_account_changes(conn, replay_deposit) is False
        current = load_account(conn, "c-1")

    assert view_rows(engine) == before
    assert current is not None and (current.version, current.balance_cents) == (2, 1000)
