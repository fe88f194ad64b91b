"""Order commands: load the order (and its customer's account) from their events, decide,
append with the expected versions, retry on a clash.

This layer knows the event store and the domain, and nothing of HTTP.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence

from command_service.adapters.event_codec import decode
from command_service.adapters.event_feed import feed_page_json
from command_service.adapters.event_store import (
    ConcurrencyError,
    EventStore,
    NewEvent,
    StreamAppend,
)
from command_service.application import access
from command_service.application.as_of import AsOf, state_events
from command_service.application.commands import CommandContext, new_events
from command_service.application.contention import pause_before_retry
from command_service.application.order_results import CommandResult, movement_of, result_of
from command_service.application.order_versions import (
    ExpectedVersion,
    VersionConflict,
    unmet_version,
)
from command_service.application.snapshots import SnapshottingLoader
from command_service.application.state_codecs import ACCOUNT_STATE, ORDER_STATE
from command_service.domain import account as account_domain
from command_service.domain import order as domain
from command_service.domain import payments
from command_service.domain.errors import (
    DomainError,
    OrderAlreadyExists,
    OrderIdTaken,
    OrderNotFound,
)
from shared.contract.envelope import EventEnvelope
from shared.contract.principal import Principal


class OrderService:
    """The order commands of the original design: add, update status, delete (cancel)."""

    def __init__(
        self, store: EventStore, retry_attempts: int = 5, snapshot_every: int = 100
    ) -> None:
        self.store = store
        self.retry_attempts = retry_attempts
        # Never snapshot orders: their lifecycle is at most four events, so a snapshot lookup
        # (a second statement per load) costs more than folding the whole stream.
        self.orders = SnapshottingLoader(store, ORDER_STATE, 0)
        self.accounts = SnapshottingLoader(store, ACCOUNT_STATE, snapshot_every)

    def place_order(self, command: domain.PlaceOrder, ctx: CommandContext) -> CommandResult:
        """Place an order; repeating the same order id with the same content is a safe retry."""
        domain.validate_identifier("order_id", command.order_id)
        access.check_may_place(ctx.principal, command.customer_id)
        fingerprint = command_fingerprint(command)
        events = self._new_events(domain.decide(None, command), ctx, fingerprint)

        def placed(appended: list[EventEnvelope]) -> CommandResult:
            return result_of(command.order_id, appended, domain.OrderStatus.PLACED)

        # Append first, read only on a clash: a new id is the common case, and the append's
        # version check (under the write lock) is the one that counts anyway.
        try:
            appended = self.store.append(command.order_id, 0, events, ctx.append_hook(placed))
        except ConcurrencyError:
            stored = self.store.load_stream(command.order_id)
            if not stored:  # not this stream's clash (a reused event id): nothing to compare
                raise VersionConflict(command.order_id, 0, 0, "UNKNOWN") from None
            return self._replayed_placement(command.order_id, stored, fingerprint, ctx)
        return placed(appended)

    def change_status(
        self,
        command: domain.ChangeOrderStatus,
        expected_version: ExpectedVersion,
        ctx: CommandContext,
    ) -> CommandResult:
        """Move an order to a new status."""
        return self._execute(command, expected_version, ctx)

    def cancel_order(
        self, command: domain.CancelOrder, expected_version: ExpectedVersion, ctx: CommandContext
    ) -> CommandResult:
        """Cancel an order; its events stay in the log."""
        return self._execute(command, expected_version, ctx)

    def order_state(
        self, order_id: str, viewer: Principal | None, as_of: AsOf | None = None
    ) -> domain.Order:
        """The order now (folded from its events), or as it was at a version or moment; an
        order the viewer may not read does not exist for them."""
        if as_of is None:
            state = self._load(order_id)
        else:
            stream = self.order_events(order_id)
            state = domain.load(decode(e) for e in state_events("order", order_id, stream, as_of))
        if state is None:
            raise OrderNotFound(order_id)
        access.check_may_read_order(viewer, state)
        return state

    def order_events(self, order_id: str) -> list[EventEnvelope]:
        """The stream of one order as stored."""
        stored = self.store.load_stream(order_id) if domain.is_identifier(order_id) else []
        if not stored:
            raise OrderNotFound(order_id)
        return stored

    def log_page_json(self, position: int, limit: int) -> str:
        """A page of the whole log after a position, as the GET /events JSON body; events as
        stored (not upcast)."""
        return feed_page_json(self.store, position, limit)

    def _execute(
        self,
        command: domain.ChangeOrderStatus | domain.CancelOrder,
        expected_version: ExpectedVersion,
        ctx: CommandContext,
    ) -> CommandResult:
        # Without an expected version from the client, a clash with a concurrent writer is ours
        # to resolve: reload and decide again (the account may have changed meanwhile too).
        # With one, a clash on the order is the client's answer.
        for attempt in range(self.retry_attempts):
            if attempt:
                pause_before_retry(attempt - 1)
            state = self._load(command.order_id)
            if state is None:
                raise OrderNotFound(command.order_id)
            target = command.status if isinstance(command, domain.ChangeOrderStatus) else None
            access.check_may_change(ctx.principal, state, target)
            missed = unmet_version(expected_version, state.version)
            if missed is not None:
                raise VersionConflict(command.order_id, missed, state.version, state.status)
            account = self._load_account(state.customer_id)
            try:
                decision = payments.decide(state, account, command)
            except DomainError:
                # The two streams were read one after the other; a writer in between can make
                # them disagree (order still PLACED, account already debited for it). Such a
                # refusal is only real if neither stream moved since we read it.
                if self._moved(state, account):
                    continue
                raise
            appends = [
                StreamAppend(
                    command.order_id, state.version, self._new_events(decision.order_events, ctx)
                )
            ]
            if decision.account_events:
                assert account is not None  # payments.decide raised otherwise
                appends.append(
                    StreamAppend(
                        account_domain.account_stream(state.customer_id),
                        account.version,
                        self._new_events(decision.account_events, ctx),
                    )
                )
            final = functools.reduce(domain.evolve, decision.order_events, state)

            def outcome(
                appended: list[EventEnvelope],
                status: str = final.status,
                decision: payments.Decision = decision,
            ) -> CommandResult:
                movement = movement_of(decision, appended)
                return result_of(command.order_id, appended, status, movement)

            try:
                appended = self.store.append_streams(appends, ctx.append_hook(outcome))
            except ConcurrencyError as clash:
                if expected_version is not None and clash.stream_id == command.order_id:
                    latest = self._load(command.order_id)
                    assert latest is not None  # a stream never shrinks
                    raise VersionConflict(
                        command.order_id, state.version, latest.version, latest.status
                    ) from None
                continue
            self.orders.appended(command.order_id, state.version, final)
            if account is not None and decision.account_events:
                moved = functools.reduce(account_domain.evolve, decision.account_events, account)
                stream = account_domain.account_stream(state.customer_id)
                self.accounts.appended(stream, account.version, moved)
            return outcome(appended)
        latest = self._load(command.order_id)
        assert latest is not None
        raise VersionConflict(command.order_id, None, latest.version, latest.status)

    def _load(self, order_id: str) -> domain.Order | None:
        if not domain.is_identifier(order_id):
            return None  # e.g. an account's stream id: never an order
        return self.orders.load(order_id)

    def _moved(self, order: domain.Order, account: account_domain.Account | None) -> bool:
        stream = account_domain.account_stream(order.customer_id)
        account_version = account.version if account is not None else 0
        return (
            self.store.stream_version(order.order_id) != order.version
            or self.store.stream_version(stream) != account_version
        )

    def _load_account(self, customer_id: str) -> account_domain.Account | None:
        return self.accounts.load(account_domain.account_stream(customer_id))

    def _replayed_placement(
        self, order_id: str, stored: list[EventEnvelope], fingerprint: str, ctx: CommandContext
    ) -> CommandResult:
        first = stored[0]
        state = domain.load(decode(e) for e in stored)
        assert state is not None
        if first.metadata.get("command_fingerprint") != fingerprint:
            if ctx.principal is None or not ctx.principal.may_read(state.customer_id):
                raise OrderIdTaken(order_id) from None
            raise OrderAlreadyExists(order_id, state.version, state.status)
        # Same answer as the original 201: the placement's version and position.
        return CommandResult(order_id, first.version, first.position, "PLACED", replayed=True)

    @staticmethod
    def _new_events(
        events: Sequence[domain.Event | account_domain.AccountEvent],
        ctx: CommandContext,
        fingerprint: str | None = None,
    ) -> list[NewEvent]:
        return new_events(events, ctx, fingerprint)


def command_fingerprint(command: domain.PlaceOrder) -> str:
    """A stable hash of a placement's content, to tell a retry from a different order."""
    content = {
        "customer_id": command.customer_id,
        "lines": [[ln.product_id, ln.quantity, ln.unit_price_cents] for ln in command.lines],
    }
    canonical = json.dumps(content, separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()
