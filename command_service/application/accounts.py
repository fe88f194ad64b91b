"""Account commands: open an account and deposit, with safe retries; read an account's stream.

Debits and credits are not commands of their own: they happen only with an order's payment or
cancellation, in the same append (see OrderService and domain/payments.py).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

from command_service.adapters.event_codec import decode_account
from command_service.adapters.event_store import ConcurrencyError, EventStore
from command_service.application import access
from command_service.application.as_of import AsOf, state_events
from command_service.application.commands import CommandContext, new_events
from command_service.application.contention import pause_before_retry
from command_service.application.snapshots import SnapshottingLoader
from command_service.application.state_codecs import ACCOUNT_STATE
from command_service.domain import account as domain
from command_service.domain.errors import AccountAlreadyExists, AccountNotFound
from command_service.domain.order import is_identifier, validate_identifier
from shared.contract.envelope import EventEnvelope
from shared.contract.principal import Principal


@dataclass(frozen=True)
class AccountResult:
    """What a successful account command reports: new version, log position and balance."""

    customer_id: str
    version: int
    position: int
    balance_cents: int
    replayed: bool = False


class AccountContention(Exception):
    """The account kept changing under us for every retry; the client may simply retry."""

    def __init__(self, customer_id: str, attempts: int) -> None:
        super().__init__(f"account of {customer_id!r} changed concurrently {attempts} times")
        self.customer_id = customer_id


class AccountService:
    """Opens accounts and takes deposits; every write checks the stream's expected version."""

    def __init__(
        self, store: EventStore, retry_attempts: int = 5, snapshot_every: int = 100
    ) -> None:
        self.store = store
        self.retry_attempts = retry_attempts
        self.accounts = SnapshottingLoader(store, ACCOUNT_STATE, snapshot_every)

    def open_account(self, command: domain.OpenAccount, ctx: CommandContext) -> AccountResult:
        """Open an account; the same request again answers as the first time did."""
        validate_identifier("customer_id", command.customer_id)
        access.check_may_open(ctx.principal, command.customer_id, command.initial_deposit_cents)
        fingerprint = _fingerprint(command)
        stream_id = domain.account_stream(command.customer_id)
        events = new_events(domain.decide(None, command), ctx, fingerprint)

        def opened(appended: list[EventEnvelope]) -> AccountResult:
            return _result(command.customer_id, appended, command.initial_deposit_cents)

        # Append first, read only on a clash (as OrderService.place_order does): a new
        # account is the common case, and the append's version check is the one that counts.
        try:
            appended = self.store.append(stream_id, 0, events, ctx.append_hook(opened))
        except ConcurrencyError:
            stored = self.store.load_stream(stream_id)
            if not stored:  # not this stream's clash (a reused event id): nothing to compare
                raise AccountContention(command.customer_id, 1) from None
            return _replayed_opening(stored, command, fingerprint)
        return opened(appended)

    def deposit(self, command: domain.DepositFunds, ctx: CommandContext) -> AccountResult:
        """Deposit funds; a repeated deposit_id with the same amount is answered, not re-applied."""
        access.check_may_deposit(ctx.principal)
        stream_id = domain.account_stream(command.customer_id)
        for attempt in range(self.retry_attempts):
            if attempt:
                pause_before_retry(attempt - 1)
            state = self.accounts.load(stream_id)
            if state is None:
                raise AccountNotFound(command.customer_id)
            if domain.deposit_replayed(state, command):
                return _replayed_deposit(self.store.load_stream(stream_id), command)
            events = domain.decide(state, command)
            balance = state.balance_cents + command.amount_cents

            def deposited(appended: list[EventEnvelope], balance: int = balance) -> AccountResult:
                return _result(command.customer_id, appended, balance)

            try:
                appended = self.store.append(
                    stream_id, state.version, new_events(events, ctx), ctx.append_hook(deposited)
                )
            except ConcurrencyError:
                continue
            moved = functools.reduce(domain.evolve, events, state)
            self.accounts.appended(stream_id, state.version, moved)
            return deposited(appended)
        raise AccountContention(command.customer_id, self.retry_attempts)

    def account_state(
        self, customer_id: str, viewer: Principal | None, as_of: AsOf | None = None
    ) -> domain.Account:
        """The account now (latest snapshot + events), or as it was at a version or moment;
        another customer's account does not exist for a read:own viewer."""
        if not is_identifier(customer_id):
            raise AccountNotFound(customer_id)
        access.check_may_read_account(viewer, customer_id)
        if as_of is None:
            state = self.accounts.load(domain.account_stream(customer_id))
        else:
            stream = self.account_events(customer_id)
            events = state_events("account", customer_id, stream, as_of)
            state = domain.load(decode_account(e) for e in events)
        if state is None:
            raise AccountNotFound(customer_id)
        return state

    def account_events(self, customer_id: str) -> list[EventEnvelope]:
        """The account's stream as stored."""
        stored = []
        if is_identifier(customer_id):
            stored = self.store.load_stream(domain.account_stream(customer_id))
        if not stored:
            raise AccountNotFound(customer_id)
        return stored


def _replayed_opening(
    stored: list[EventEnvelope], command: domain.OpenAccount, fingerprint: str
) -> AccountResult:
    if stored[0].metadata.get("command_fingerprint") != fingerprint:
        state = domain.load(decode_account(e) for e in stored)
        assert state is not None
        raise AccountAlreadyExists(state.customer_id, state.version, state.balance_cents)
    # The same answer as the original 201: that opening's last event, not later ones.
    causation = stored[0].metadata.get("causation_id")
    opening = [e for e in stored if e.metadata.get("causation_id") == causation]
    return _result(command.customer_id, opening, command.initial_deposit_cents, replayed=True)


def _replayed_deposit(stored: list[EventEnvelope], command: domain.DepositFunds) -> AccountResult:
    original = next(
        e
        for e in stored
        if e.type == "FundsDeposited" and e.data.get("deposit_id") == command.deposit_id
    )
    return AccountResult(
        command.customer_id,
        original.version,
        original.position,
        original.data["balance_cents"],
        replayed=True,
    )


def _result(
    customer_id: str, appended: list[EventEnvelope], balance_cents: int, replayed: bool = False
) -> AccountResult:
    last = appended[-1]
    return AccountResult(customer_id, last.version, last.position, balance_cents, replayed)


def _fingerprint(command: domain.OpenAccount) -> str:
    content = {"customer_id": command.customer_id, "initial": command.initial_deposit_cents}
    canonical = json.dumps(content, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
