"""Writes an account event's changes inside the caller's transaction: the account row, claimed
by a version-checked write (so two projectors racing on one event cannot both apply it), then
its statement line.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Executable, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from query_service.projection.accounts import AccountChanges, AccountRow
from query_service.read_model.order_writer import load_locked_rows
from query_service.read_model.tables import account_statement, accounts


def load_account(conn: Connection, customer_id: str) -> AccountRow | None:
    """The account's row (locked for update where the database supports it), or None."""
    statement = _statements(conn.dialect.name).load_account
    row = conn.execute(statement, {"p_customer_id": customer_id}).mappings().first()
    return AccountRow(**row) if row else None


def load_accounts(conn: Connection, customer_ids: Iterable[str]) -> dict[str, AccountRow]:
    """The rows of the accounts that exist among `customer_ids` (locked where supported)."""
    return load_locked_rows(conn, accounts, "customer_id", customer_ids, AccountRow)


def advance_account_statement(conn: Connection) -> Executable:
    """The version-checked UPDATE that claims an account's next versions (p_* parameters)."""
    return _statements(conn.dialect.name).advance_account


def write_account_changes(conn: Connection, changes: AccountChanges) -> bool:
    """Claim the event's version on the account row, then add its statement line.

    False (nothing written) if another writer claimed that version first.
    """
    statements = _statements(conn.dialect.name)
    account = changes.account
    if changes.is_new_account:
        # RETURNING, not rowcount: drivers do not agree on rowcount for ON CONFLICT DO NOTHING.
        inserted = conn.execute(statements.insert_account, account._asdict())
        claimed = (inserted.first() is not None) if inserted.returns_rows else True
    else:
        advanced = conn.execute(
            statements.advance_account,
            {
                "p_customer_id": account.customer_id,
                "p_previous_version": account.version - 1,
                "p_balance_cents": account.balance_cents,
                "p_deposited_cents": account.deposited_cents,
                "p_debited_cents": account.debited_cents,
                "p_credited_cents": account.credited_cents,
                "p_updated_at": account.updated_at,
                "p_version": account.version,
            },
        )
        claimed = advanced.rowcount == 1
    if not claimed:
        return False
    if changes.statement_line is not None:
        conn.execute(insert(account_statement), changes.statement_line._asdict())
    return True


@dataclass(frozen=True)
class _Statements:
    """The account statements of one dialect, built once (see writer.py for why)."""

    load_account: Executable
    insert_account: Executable
    advance_account: Executable


@functools.cache
def _statements(dialect: str) -> _Statements:
    load = (
        select(accounts)
        .where(accounts.c.customer_id == bindparam("p_customer_id"))
        .with_for_update()
    )
    advance = (
        update(accounts)
        .where(
            accounts.c.customer_id == bindparam("p_customer_id"),
            accounts.c.version == bindparam("p_previous_version"),
        )
        .values(
            balance_cents=bindparam("p_balance_cents"),
            deposited_cents=bindparam("p_deposited_cents"),
            debited_cents=bindparam("p_debited_cents"),
            credited_cents=bindparam("p_credited_cents"),
            updated_at=bindparam("p_updated_at"),
            version=bindparam("p_version"),
        )
    )
    if dialect not in ("sqlite", "postgresql"):
        return _Statements(load, insert(accounts), advance)
    module: Any = sqlite if dialect == "sqlite" else postgresql
    insert_new = (
        module.insert(accounts)
        .on_conflict_do_nothing(index_elements=["customer_id"])
        .returning(accounts.c.customer_id)
    )
    return _Statements(load, insert_new, advance)
