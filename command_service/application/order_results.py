"""What an order command reports back: the order's new version and any money it moved."""

from __future__ import annotations

from dataclasses import dataclass

from command_service.domain import account as account_domain
from command_service.domain import payments
from shared.contract.envelope import EventEnvelope


@dataclass(frozen=True)
class AccountMovement:
    """Money a command moved: the account's new version and balance."""

    customer_id: str
    version: int
    balance_cents: int
    amount_cents: int
    kind: str  # "debit" or "credit"


@dataclass(frozen=True)
class CommandResult:
    """What a successful command reports back: the order's new version and log position."""

    order_id: str
    version: int
    position: int
    status: str
    replayed: bool = False
    account: AccountMovement | None = None


def result_of(
    order_id: str,
    appended: list[EventEnvelope],
    status: str,
    account: AccountMovement | None = None,
) -> CommandResult:
    """The result of a command whose events were appended as `appended`."""
    # The order's version, but the position of the command's last event in the log (a debit
    # or refund is appended after the order's event).
    version = max(e.version for e in appended if e.stream_id == order_id)
    position = max(e.position for e in appended)
    return CommandResult(order_id, version, position, str(status), account=account)


def movement_of(
    decision: payments.Decision, appended: list[EventEnvelope]
) -> AccountMovement | None:
    """The debit or refund a decision made, with the account's version after the append."""
    for event in decision.account_events:
        if isinstance(event, account_domain.AccountDebited | account_domain.AccountCredited):
            stream = account_domain.account_stream(event.customer_id)
            version = max(e.version for e in appended if e.stream_id == stream)
            kind = "debit" if isinstance(event, account_domain.AccountDebited) else "credit"
            return AccountMovement(
                event.customer_id, version, event.balance_cents, event.amount_cents, kind
            )
    return None
