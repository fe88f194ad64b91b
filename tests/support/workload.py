"""The load generator of system tests: clients (orders_client, one per thread) that open
accounts, place orders and walk each through a lifecycle path from several threads, retrying
through outages, and remember every version the command API acknowledged.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from orders_client import (
    AccountBusy,
    AccountResult,
    Client,
    CommandResult,
    ConnectionFailed,
    LineItem,
    ProblemError,
    Retry,
    ServiceUnavailable,
    VersionConflict,
)
from tests.support.reference_model import ACCOUNT_STREAM_PREFIX

T = TypeVar("T")
PRODUCTS = tuple(f"p-{n:02d}" for n in range(12))
CUSTOMERS = tuple(f"c-{n:02d}" for n in range(15))
OPENING_DEPOSIT_CENTS = 50_000_000  # enough for every order a workload gives a customer
# Resends of one client call (backoff up to 2 s, or Retry-After); past them an outage is
# longer than a call should wait, and the workload sends the same command again itself.
CLIENT_RETRIES = 4
OUTAGE_PAUSE_S = 0.2

# The lifecycle each order of a workload goes through after being placed: every allowed path.
PATHS: tuple[tuple[str, ...], ...] = (
    (),
    ("PAID",),
    ("PAID", "SHIPPED"),
    ("PAID", "SHIPPED", "DELIVERED"),
    ("CANCEL",),
    ("PAID", "CANCEL"),
)


def bearer_token(headers: Mapping[str, str]) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    return headers["Authorization"].removeprefix("Bearer ")


@dataclass
class Acknowledged:
    """A stream version the command API acknowledged (2xx): it must show up, whatever happens."""

    stream_id: str
    version: int
    kind: str


class Workload:
    """Clients placing orders and walking each through a lifecycle path, from several threads.

    Each thread drives its orders through its own orders_client.Client, which sends every
    command with an Idempotency-Key and resends it with that key through a dropped connection
    or a 503: a command applied before its answer was lost is answered with its first result,
    never applied twice. When an outage outlasts the client's resends, the workload sends the
    same command (same key) again until its deadline. A version conflict on a status change
    sent without expected_version (the server's own retries kept clashing with another writer
    of the account; nothing was recorded) is sent again the same way; any other error answer
    is unexpected.
    """

    def __init__(
        self,
        command_url: Callable[[], str],
        orders: int,
        seed: int = 7,
        *,
        headers: Mapping[str, str],
    ) -> None:
        self.command_url = command_url
        self.token = bearer_token(headers)  # the bearer token every client sends
        self.customers = CUSTOMERS
        self.rng = random.Random(seed)
        self.plans = [self._plan(n) for n in range(orders)]
        self.acknowledged: list[Acknowledged] = []
        self.retries = 0
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        self._next = 0

    def _plan(self, n: int) -> tuple[str, dict[str, Any], tuple[str, ...]]:
        order_id = f"e2e-{n:05d}-{uuid.uuid4().hex[:6]}"
        products = self.rng.sample(PRODUCTS, self.rng.randint(1, 4))
        body = {
            "order_id": order_id,
            "customer_id": self.rng.choice(CUSTOMERS),
            "lines": [
                LineItem(p, self.rng.randint(1, 5), self.rng.randint(1, 20000)) for p in products
            ],
        }
        return order_id, body, PATHS[n % len(PATHS)]

    def client(self) -> Client:
        """A client of this workload's command API that counts its resends as retries."""
        return Client(
            self.command_url(), token=self.token, retries=CLIENT_RETRIES, on_retry=self._retried
        )

    def run(self, threads: int, deadline_s: float = 300) -> None:
        """Open the customers' accounts, then drive every planned order through its path."""
        deadline = time.monotonic() + deadline_s
        with self.client() as client:
            for customer_id in self.customers:
                opened = self._send(deadline, self._opening(client, customer_id))
                self._ack(ACCOUNT_STREAM_PREFIX + customer_id, opened.version, "open")
        workers = [
            threading.Thread(target=self._worker, args=(time.monotonic() + deadline_s,))
            for _ in range(threads)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        assert not self.unexpected, "unexpected answers:\n" + "\n".join(self.unexpected[:10])

    def start(self, threads: int, deadline_s: float = 300) -> threading.Thread:
        """Run in the background; join the returned thread."""
        runner = threading.Thread(target=self.run, args=(threads, deadline_s))
        runner.start()
        return runner

    @property
    def done(self) -> int:
        """Orders taken up by a client so far."""
        with self._lock:
            return self._next

    def _take(self) -> tuple[str, dict[str, Any], tuple[str, ...]] | None:
        with self._lock:
            if self._next >= len(self.plans):
                return None
            plan = self.plans[self._next]
            self._next += 1
            return plan

    def _worker(self, deadline: float) -> None:
        try:
            client = self.client()
        except Exception as exc:  # e.g. a stopped workload: reported by run()
            with self._lock:
                self.unexpected.append(f"client: {exc!r}")
            return
        with client:
            while (plan := self._take()) is not None:
                order_id, body, path = plan
                try:
                    self._drive(client, deadline, order_id, body, path)
                except Exception as exc:  # reported by run(), not lost in a thread
                    with self._lock:
                        self.unexpected.append(f"{order_id}: {exc!r}")

    def _drive(
        self,
        client: Client,
        deadline: float,
        order_id: str,
        body: dict[str, Any],
        path: tuple[str, ...],
    ) -> None:
        customer_id = body["customer_id"]
        placed = self._send(
            deadline,
            lambda key: client.place_order(
                customer_id, body["lines"], order_id, idempotency_key=key
            ),
        )
        self._ack(order_id, placed.version, "place")
        if int(order_id.split("-")[1]) % 4 == 0:
            # A deposit now and then; its deposit_id makes it count once even without the key.
            deposited = self._send(
                deadline,
                lambda key: client.deposit(
                    customer_id, 1234, f"dep-{order_id}", idempotency_key=key
                ),
            )
            self._ack(ACCOUNT_STREAM_PREFIX + customer_id, deposited.version, "deposit")
        for step in path:
            result = self._send(deadline, self._step(client, order_id, step))
            self._ack(order_id, result.version, step)
            if result.account is not None:
                stream_id = ACCOUNT_STREAM_PREFIX + result.account.customer_id
                self._ack(stream_id, result.account.version, step)

    @staticmethod
    def _opening(client: Client, customer_id: str) -> Callable[[str], AccountResult]:
        return lambda key: client.open_account(
            customer_id, OPENING_DEPOSIT_CENTS, idempotency_key=key
        )

    @staticmethod
    def _step(client: Client, order_id: str, step: str) -> Callable[[str], CommandResult]:
        if step == "CANCEL":
            return lambda key: client.cancel_order(order_id, idempotency_key=key)
        return lambda key: client.change_status(order_id, step, idempotency_key=key)

    def _ack(self, stream_id: str, version: int, kind: str) -> None:
        with self._lock:
            self.acknowledged.append(Acknowledged(stream_id, version, kind))

    def _retried(self, retry: Retry) -> None:
        with self._lock:
            self.retries += 1
        self.command_url()  # a stopped workload's raises here, so its clients give up

    def _send(self, deadline: float, command: Callable[[str], T]) -> T:
        """Send one command until answered, always with the same Idempotency-Key."""
        key = str(uuid.uuid4())
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"command {key} not answered before the deadline")
            try:
                return command(key)
            except (ConnectionFailed, ServiceUnavailable, AccountBusy):
                pass  # an outage longer than the client's resends: send again, same key
            except VersionConflict as conflict:
                if conflict.expected_version is not None:
                    raise  # a conflict with what we asked for is a real answer
                # Contention the server gave up resolving: nothing was recorded.
            with self._lock:
                self.retries += 1
            self.command_url()
            time.sleep(OUTAGE_PAUSE_S)


def pay_in_lockstep(
    command_url: str,
    order_ids: list[str],
    barrier: Any,
    results: Any,
    name: str,
    headers: Mapping[str, str],
) -> None:
    """Run in a child process: pay each order at the same moment as the other process does.

    Puts (name, order_id, status, problem type or None) on `results` for every attempt.
    """
    with Client(command_url, token=bearer_token(headers), timeout=30) as client:
        for order_id in order_ids:
            barrier.wait(60)
            try:
                client.change_status(order_id, "PAID")
            except ProblemError as refused:  # the loser of a race: insufficient-funds
                results.put((name, order_id, refused.status, refused.type))
            else:
                results.put((name, order_id, 200, None))
