"""The load generator of system tests: clients that open accounts, place orders and walk each
through a lifecycle path from several threads, retrying through outages, and remember every
version the command API acknowledged.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from tests.support.auth import api_session
from tests.support.reference_model import ACCOUNT_STREAM_PREFIX

PRODUCTS = tuple(f"p-{n:02d}" for n in range(12))
CUSTOMERS = tuple(f"c-{n:02d}" for n in range(15))
OPENING_DEPOSIT = "500000.00"  # enough for every order a workload gives a customer

# The lifecycle each order of a workload goes through after being placed: every allowed path.
PATHS: tuple[tuple[str, ...], ...] = (
    (),
    ("PAID",),
    ("PAID", "SHIPPED"),
    ("PAID", "SHIPPED", "DELIVERED"),
    ("CANCEL",),
    ("PAID", "CANCEL"),
)


@dataclass
class Acknowledged:
    """A stream version the command API acknowledged (2xx): it must show up, whatever happens."""

    stream_id: str
    version: int
    kind: str


class Workload:
    """Clients placing orders and walking each through a lifecycle path, from several threads.

    Clients retry through outages (connection refused, 503) as a careful client would: a place
    is retried with the same order id and body (the API answers a retry with the first result);
    a status change that may have been applied before the connection dropped is checked against
    the order's state before it is sent again.
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
        self.headers = dict(headers)  # the bearer token every client sends
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
                {
                    "product_id": p,
                    "quantity": self.rng.randint(1, 5),
                    "unit_price": f"{self.rng.randint(1, 20000) / 100:.2f}",
                }
                for p in products
            ],
        }
        return order_id, body, PATHS[n % len(PATHS)]

    def run(self, threads: int, deadline_s: float = 300) -> None:
        """Open the customers' accounts, then drive every planned order through its path."""
        deadline = time.monotonic() + deadline_s
        session = api_session(self.headers)
        for customer_id in self.customers:
            body = {"customer_id": customer_id, "initial_deposit": OPENING_DEPOSIT}
            opened = self._send(session, deadline, "POST", "/accounts", body, {201})
            self._ack(ACCOUNT_STREAM_PREFIX + customer_id, opened.json()["version"], "open")
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
        session = api_session(self.headers)
        while (plan := self._take()) is not None:
            order_id, body, path = plan
            try:
                self._drive(session, deadline, order_id, body, path)
            except Exception as exc:  # reported by run(), not lost in a thread
                with self._lock:
                    self.unexpected.append(f"{order_id}: {exc!r}")

    def _drive(
        self,
        session: requests.Session,
        deadline: float,
        order_id: str,
        body: dict[str, Any],
        path: tuple[str, ...],
    ) -> None:
        placed = self._send(session, deadline, "POST", "/orders", body, {201})
        self._ack(order_id, placed.json()["version"], "place")
        if int(order_id.split("-")[1]) % 4 == 0:
            # A deposit now and then, retry-safe through its deposit_id.
            customer_id = body["customer_id"]
            deposit = {"amount": "12.34", "deposit_id": f"dep-{order_id}"}
            path_ = f"/accounts/{customer_id}/deposits"
            done = self._send(session, deadline, "POST", path_, deposit, {200})
            self._ack(ACCOUNT_STREAM_PREFIX + customer_id, done.json()["version"], "deposit")
        for step in path:
            if step == "CANCEL":
                response = self._send(
                    session, deadline, "DELETE", f"/orders/{order_id}", None, {200}, order_id
                )
            else:
                response = self._send(
                    session,
                    deadline,
                    "POST",
                    f"/orders/{order_id}/status",
                    {"status": step},
                    {200},
                    order_id,
                    step,
                )
            if response is not None:
                answer = response.json()
                self._ack(order_id, answer["version"], step)
                if "account" in answer:
                    stream_id = ACCOUNT_STREAM_PREFIX + answer["account"]["customer_id"]
                    self._ack(stream_id, answer["account"]["version"], step)

    def _ack(self, stream_id: str, version: int, kind: str) -> None:
        with self._lock:
            self.acknowledged.append(Acknowledged(stream_id, version, kind))

    def _send(
        self,
        session: requests.Session,
        deadline: float,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        ok: set[int],
        order_id: str | None = None,
        target: str = "CANCELLED",
        after_outage: bool = False,
    ) -> Any:
        """Send until answered; None if an earlier attempt was applied but not acknowledged."""
        while True:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path} not answered before the deadline")
            try:
                response = session.request(method, self.command_url() + path, json=body, timeout=10)
            except requests.RequestException:
                response = None
            if response is not None and response.status_code in ok:
                return response
            if response is not None and response.status_code not in (409, 502, 503, 504):
                raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
            if response is not None and response.status_code == 409 and not after_outage:
                raise AssertionError(f"{method} {path}: conflict {response.text}")
            # An outage: the command may or may not have been applied before it.
            with self._lock:
                self.retries += 1
            after_outage = True
            time.sleep(0.2)
            if order_id is not None and self._current_status(session, order_id) == target:
                return None

    def _current_status(self, session: requests.Session, order_id: str) -> str | None:
        try:
            response = session.get(f"{self.command_url()}/orders/{order_id}", timeout=5)
        except requests.RequestException:
            return None
        return response.json()["status"] if response.status_code == 200 else None


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
    session = api_session(headers)
    for order_id in order_ids:
        barrier.wait(60)
        response = session.post(
            f"{command_url}/orders/{order_id}/status", json={"status": "PAID"}, timeout=30
        )
        problem = response.json().get("type") if response.status_code >= 400 else None
        results.put((name, order_id, response.status_code, problem))
