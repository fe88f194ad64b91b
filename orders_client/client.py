"""The client: every command and read of the two services as typed methods.

Commands go to the command service with a fresh Idempotency-Key each (or the caller's own),
so a resend after a dropped connection is answered with the first result instead of being
applied twice. Reads of the query service take `min_version`: pass the `version` a command
returned to read your own write.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from orders_client.command_results import AccountResult, CommandResult, LineItem
from orders_client.errors import NotFound, ProjectionBehind
from orders_client.event_log import AccountState, EventsPage, OrderState, StoredEvent
from orders_client.read_model import (
    Account,
    Customer,
    Order,
    OrderHistory,
    OrderPage,
    ProductSales,
    Statement,
)
from orders_client.request_params import as_of_params, listing_params, segment
from orders_client.transport import Answer, Retry, RetryPolicy, Transport

UP_TO_DATE_HEADER = "X-Projection-Up-To-Date"


class Client:
    """Typed access to the command API (`command_url`) and the query API (`query_url`).

    `token` is the bearer token sent with every request. `retries` bounds the resends of one
    call (see orders_client.transport for what is resent); `on_retry` hears of each (an
    exception it raises ends the call). Holds a connection pool: use one Client per thread,
    and close() it (or use it as a context manager).
    """

    def __init__(
        self,
        command_url: str,
        query_url: str | None = None,
        token: str = "",
        timeout: float = 10.0,
        retries: int = 4,
        *,
        backoff_s: float = 0.1,
        max_backoff_s: float = 2.0,
        idempotency_keys: bool = True,
        on_retry: Callable[[Retry], None] | None = None,
    ) -> None:
        self.command_url = command_url.rstrip("/")
        self.query_url = query_url.rstrip("/") if query_url is not None else None
        # False: commands carry a key only when the caller passes one (and are then not
        # resent after a dropped connection, since they could be applied twice).
        self.idempotency_keys = idempotency_keys
        policy = RetryPolicy(retries, backoff_s, max_backoff_s)
        self.transport = Transport(token, timeout, policy, on_retry)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self.transport.close()

    # --- commands ---------------------------------------------------------------------------

    def open_account(
        self,
        customer_id: str,
        initial_deposit_cents: int = 0,
        *,
        idempotency_key: str | None = None,
    ) -> AccountResult:
        """Open a customer's account (an initial deposit needs accounts:deposit or admin)."""
        body: dict[str, Any] = {"customer_id": customer_id}
        if initial_deposit_cents:
            body["initial_deposit_cents"] = initial_deposit_cents
        answer = self._command("POST", "/accounts", body, idempotency_key)
        return AccountResult.from_json(answer.body, answer.replayed)

    def deposit(
        self,
        customer_id: str,
        amount_cents: int,
        deposit_id: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> AccountResult:
        """Deposit into an account; a `deposit_id` makes the deposit count once, ever."""
        body: dict[str, Any] = {"amount_cents": amount_cents}
        if deposit_id is not None:
            body["deposit_id"] = deposit_id
        path = f"/accounts/{segment(customer_id)}/deposits"
        answer = self._command("POST", path, body, idempotency_key)
        return AccountResult.from_json(answer.body, answer.replayed)

    def place_order(
        self,
        customer_id: str,
        lines: Iterable[LineItem],
        order_id: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> CommandResult:
        """Place an order (the service picks the order id unless one is given)."""
        body: dict[str, Any] = {
            "customer_id": customer_id,
            "lines": [line.to_json() for line in lines],
        }
        if order_id is not None:
            body["order_id"] = order_id
        answer = self._command("POST", "/orders", body, idempotency_key)
        return CommandResult.from_json(answer.body, answer.replayed)

    def change_status(
        self,
        order_id: str,
        status: str,
        expected_version: int | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> CommandResult:
        """Move an order to PAID (debits the account), SHIPPED, DELIVERED or CANCELLED."""
        body: dict[str, Any] = {"status": status}
        if expected_version is not None:
            body["expected_version"] = expected_version
        path = f"/orders/{segment(order_id)}/status"
        answer = self._command("POST", path, body, idempotency_key)
        return CommandResult.from_json(answer.body, answer.replayed)

    def cancel_order(
        self,
        order_id: str,
        expected_version: int | None = None,
        reason: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> CommandResult:
        """Cancel an order (PLACED or PAID; a paid one is refunded in the same append)."""
        body: dict[str, Any] = {}
        if expected_version is not None:
            body["expected_version"] = expected_version
        if reason is not None:
            body["reason"] = reason
        path = f"/orders/{segment(order_id)}"
        answer = self._command("DELETE", path, body or None, idempotency_key)
        return CommandResult.from_json(answer.body, answer.replayed)

    # --- the event log (command service: strongly consistent) -------------------------------

    def order_state(
        self, order_id: str, as_of_version: int | None = None, as_of: datetime | None = None
    ) -> OrderState:
        """The order folded from its events: now, or as of a version or a moment."""
        params = as_of_params(as_of_version, as_of)
        body = self._get(self.command_url, f"/orders/{segment(order_id)}", params).body
        return OrderState.from_json(body)

    def account_state(
        self, customer_id: str, as_of_version: int | None = None, as_of: datetime | None = None
    ) -> AccountState:
        """The account folded from its events: now, or as of a version or a moment."""
        params = as_of_params(as_of_version, as_of)
        body = self._get(self.command_url, f"/accounts/{segment(customer_id)}", params).body
        return AccountState.from_json(body)

    def order_events(self, order_id: str) -> tuple[StoredEvent, ...]:
        """One order's stream as stored (events:read)."""
        body = self._get(self.command_url, f"/orders/{segment(order_id)}/events").body
        return tuple(StoredEvent.from_json(e) for e in body["events"])

    def account_events(self, customer_id: str) -> tuple[StoredEvent, ...]:
        """One account's stream as stored (events:read)."""
        body = self._get(self.command_url, f"/accounts/{segment(customer_id)}/events").body
        return tuple(StoredEvent.from_json(e) for e in body["events"])

    def events(self, after: int = 0, limit: int = 100) -> EventsPage:
        """A page of the whole log after a position (events:read)."""
        params = {"after": after, "limit": limit}
        return EventsPage.from_json(self._get(self.command_url, "/events", params).body)

    def head_position(self) -> int:
        """The newest log position, 0 for an empty log (events:read)."""
        head: int = self._get(self.command_url, "/events/head").body["head_position"]
        return head

    # --- the read model (query service: eventually consistent) ------------------------------

    def order(self, order_id: str, min_version: int | None = None) -> Order:
        """An order with its lines; with `min_version`, at least that version or
        ProjectionBehind (the service waits for the projection first)."""
        path = f"/orders/{segment(order_id)}"
        if min_version is None:
            return Order.from_json(self._get(self._query(), path).body)
        answer = self._read_your_write(path, min_version, f"order {order_id!r}")
        return Order.from_json(answer.body)

    def orders(
        self,
        status: str | None = None,
        customer_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> OrderPage:
        """A page of orders, newest first (read:own sees its own customer's only)."""
        params = listing_params(status, created_after, created_before, limit, cursor)
        params["customer_id"] = customer_id
        return OrderPage.from_json(self._get(self._query(), "/orders", params).body)

    def customer_orders(
        self,
        customer_id: str,
        status: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> OrderPage:
        """A page of one customer's orders, newest first."""
        params = listing_params(status, created_after, created_before, limit, cursor)
        path = f"/customers/{segment(customer_id)}/orders"
        return OrderPage.from_json(self._get(self._query(), path, params).body)

    def order_history(self, order_id: str) -> OrderHistory:
        """An order's events as projected, and who caused each."""
        path = f"/orders/{segment(order_id)}/history"
        return OrderHistory.from_json(self._get(self._query(), path).body)

    def customer(self, customer_id: str) -> Customer:
        """A customer's order counts, total and balance."""
        path = f"/customers/{segment(customer_id)}"
        return Customer.from_json(self._get(self._query(), path).body)

    def account(self, customer_id: str, min_version: int | None = None) -> Account:
        """An account; with `min_version`, at least that version or ProjectionBehind."""
        path = f"/accounts/{segment(customer_id)}"
        if min_version is None:
            return Account.from_json(self._get(self._query(), path).body)
        answer = self._read_your_write(path, min_version, f"account {customer_id!r}")
        return Account.from_json(answer.body)

    def statement(
        self, customer_id: str, limit: int | None = None, cursor: str | None = None
    ) -> Statement:
        """A page of an account's statement, oldest first, with the running balance."""
        path = f"/accounts/{segment(customer_id)}/statement"
        params = {"limit": limit, "cursor": cursor}
        return Statement.from_json(self._get(self._query(), path, params).body)

    def product_sales(self, product_id: str) -> ProductSales:
        """One product's sales (read:all)."""
        path = f"/products/{segment(product_id)}/sales"
        return ProductSales.from_json(self._get(self._query(), path).body)

    def top_products(self, by: str = "units", limit: int | None = None) -> tuple[ProductSales, ...]:
        """Best sellers by "units" or "amount" (read:all)."""
        body = self._get(self._query(), "/products/top", {"by": by, "limit": limit}).body
        return tuple(ProductSales.from_json(p) for p in body["products"])

    # --- plumbing ---------------------------------------------------------------------------

    def _command(
        self, method: str, path: str, body: Mapping[str, Any] | None, key: str | None
    ) -> Answer:
        if key is None and self.idempotency_keys:
            key = str(uuid.uuid4())
        return self.transport.send(method, self.command_url + path, body=body, idempotency_key=key)

    def _get(self, base: str, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        return self.transport.send("GET", base + path, params=params)

    def _query(self) -> str:
        if self.query_url is None:
            raise ValueError(
                "this Client was made without a query_url: it cannot read the read model"
            )
        return self.query_url

    def _read_your_write(self, path: str, min_version: int, resource: str) -> Answer:
        try:
            answer = self._get(self._query(), path, {"min_version": min_version})
        except NotFound as exc:
            if exc.headers.get(UP_TO_DATE_HEADER) == "false":
                raise ProjectionBehind(resource, min_version, None) from exc
            raise
        if answer.headers.get(UP_TO_DATE_HEADER) == "false":
            raise ProjectionBehind(resource, min_version, answer.body.get("version"))
        return answer
