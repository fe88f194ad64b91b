"""The whole system for end-to-end and fault tests: the four processes wired as `make run` wires
them, a load of HTTP clients that survive outages, and the reference answer every query view
must converge to, folded straight from the event log.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests
from sqlalchemy import select

from command_service.adapters.event_store import EventStore
from query_service.read_model.tables import accounts, create_read_model_engine, orders
from shared.contract.envelope import EventEnvelope
from shared.infra.db import create_database_engine
from tests.support.processes import (
    HttpService,
    ServiceProcess,
    ServiceRunner,
    console_script,
    wait_until,
)

PRODUCTS = tuple(f"p-{n:02d}" for n in range(12))
CUSTOMERS = tuple(f"c-{n:02d}" for n in range(15))
STATUSES = ("PLACED", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")
ACCOUNT_STREAM_PREFIX = "account:"
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


class OrderSystem:
    """Command API, relay, query API and projector on one work directory and one topic."""

    def __init__(
        self,
        runner: ServiceRunner,
        bootstrap: str,
        topic: str,
        projector_args: Sequence[str] = (),
    ) -> None:
        self.runner = runner
        # Extra command-line options of every projector (e.g. a shorter session timeout).
        self.projector_args = tuple(projector_args)
        self.bootstrap = bootstrap
        self.topic = topic
        self.group_id = f"e2e-{uuid.uuid4().hex[:8]}"
        self._command_api: HttpService | None = None
        self._relay: ServiceProcess | None = None
        self._query_api: HttpService | None = None
        self._projector: ServiceProcess | None = None

    @property
    def read_model_url(self) -> str:
        return f"sqlite:///{self.runner.workdir / 'read_model.db'}"

    @property
    def command_api(self) -> HttpService:
        assert self._command_api is not None, "start() first"
        return self._command_api

    @property
    def relay(self) -> ServiceProcess:
        assert self._relay is not None, "start() first"
        return self._relay

    @property
    def query_api(self) -> HttpService:
        assert self._query_api is not None, "start() first"
        return self._query_api

    @property
    def projector(self) -> ServiceProcess:
        assert self._projector is not None, "start() first"
        return self._projector

    def query_env(self) -> dict[str, str]:
        """What the query side's processes are given (the rebuild command too)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC": self.topic,
            "KAFKA_GROUP_ID": self.group_id,
            "READ_MODEL_URL": self.read_model_url,
            "COMMAND_API_URL": self.command_api.base_url,
        }

    def start(self) -> OrderSystem:
        """Start all four and wait until both APIs answer."""
        # A short lease so a relay restarted after kill -9 takes over within seconds.
        self._command_api = self.runner.command_api()
        self._relay = self.runner.relay(self.bootstrap, self.topic, RELAY_LEASE_SECONDS="3")
        self._query_api = self.runner.start_http(
            "query-api",
            "query-api",
            "query_service.server",
            "QUERY_API_HOST",
            "QUERY_API_PORT",
            **self.query_env(),
        )
        self._projector = self.start_projector("projector")
        return self

    def start_projector(self, name: str) -> ServiceProcess:
        """Start a projector in the system's consumer group (also a second one, beside it)."""
        argv = console_script("query-projector", "query_service.projector_main")
        service = ServiceProcess(
            name,
            argv + list(self.projector_args),
            self.runner.base_env(**self.query_env()),
            self.runner.workdir / f"{name}.log",
        )
        self.runner.services.append(service)  # stopped with the others
        return service.start()

    def restart(self, service: ServiceProcess) -> None:
        """Start a stopped or killed service again with the same settings (and port)."""
        service.start()
        if isinstance(service, HttpService):
            service.wait_healthy(60)

    def event_log(self) -> list[EventEnvelope]:
        """Every event in the log, in position order, read from the SQLite file directly."""
        engine = create_database_engine(self.runner.event_store_url)
        try:
            store = EventStore(engine)
            envelopes: list[EventEnvelope] = []
            while page := store.read_all(envelopes[-1].position if envelopes else 0, 1000):
                envelopes += page
            return envelopes
        finally:
            engine.dispose()

    def projected_versions(self) -> dict[str, int]:
        """Stream id (order id, or account:<customer>) -> version in the read model."""
        engine = create_read_model_engine(self.read_model_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(orders.c.order_id, orders.c.version))
                versions = {row.order_id: row.version for row in rows}
                rows = conn.execute(select(accounts.c.customer_id, accounts.c.version))
                versions |= {ACCOUNT_STREAM_PREFIX + row.customer_id: row.version for row in rows}
                return versions
        finally:
            engine.dispose()

    def wait_converged(self, timeout: float = 120) -> ExpectedViews:
        """Wait until the read model holds every order and account at its last version."""
        expected = ExpectedViews.fold(self.event_log())
        want = {order_id: order.version for order_id, order in expected.orders.items()}
        want |= {ACCOUNT_STREAM_PREFIX + c: a.version for c, a in expected.accounts.items()}

        def caught_up() -> bool:
            return self.projected_versions() == want

        def behind() -> str:
            got = self.projected_versions()
            wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
            return (
                f"{len(wrong)} of {len(want)} streams not projected as (read model, log): "
                f"{dict(list(wrong.items())[:5])}; extra: {set(got) - set(want)}"
            )

        wait_until(caught_up, timeout, behind, interval=0.25)
        return expected


@dataclass
class ExpectedOrder:
    """An order as its events say it is."""

    customer_id: str
    status: str
    version: int
    total_cents: int
    line_count: int
    total_quantity: int
    lines: list[dict[str, Any]]
    event_types: list[str] = field(default_factory=list)


@dataclass
class ExpectedAccount:
    """An account as its events say it is, with its statement lines."""

    version: int = 0
    balance_cents: int = 0
    deposited_cents: int = 0
    debited_cents: int = 0
    credited_cents: int = 0
    # (version, kind, signed amount, balance after, order id)
    statement: list[tuple[int, str, int, int, str | None]] = field(default_factory=list)

    def apply(self, envelope: EventEnvelope) -> None:
        """Fold one event, checking the log's own arithmetic as it goes."""
        assert envelope.version == self.version + 1, f"log gap or repeat: {envelope}"
        self.version = envelope.version
        data = envelope.data
        if envelope.type == "AccountOpened":
            return
        amount = data["amount_cents"]
        if envelope.type == "FundsDeposited":
            kind, signed = "DEPOSIT", amount
            self.deposited_cents += amount
        elif envelope.type == "AccountDebited":
            kind, signed = "DEBIT", -amount
            self.debited_cents += amount
        else:
            kind, signed = "CREDIT", amount
            self.credited_cents += amount
        self.balance_cents += signed
        assert self.balance_cents >= 0, f"negative balance in the log: {envelope}"
        assert data["balance_cents"] == self.balance_cents, f"balance mismatch: {envelope}"
        self.statement.append(
            (self.version, kind, signed, self.balance_cents, data.get("order_id"))
        )


@dataclass
class ExpectedViews:
    """What each query view must show, computed from the event log alone."""

    orders: dict[str, ExpectedOrder]
    customers: dict[str, dict[str, Any]]
    products: dict[str, dict[str, int]]
    accounts: dict[str, ExpectedAccount] = field(default_factory=dict)

    @classmethod
    def fold(cls, envelopes: Iterable[EventEnvelope]) -> ExpectedViews:
        """Fold the log; also checks the log itself: versions 1..n per stream, no repeats."""
        result: dict[str, ExpectedOrder] = {}
        accounts: dict[str, ExpectedAccount] = {}
        for envelope in envelopes:
            data = envelope.data
            if envelope.stream_id.startswith(ACCOUNT_STREAM_PREFIX):
                accounts.setdefault(data["customer_id"], ExpectedAccount()).apply(envelope)
                continue
            if envelope.type == "OrderPlaced":
                assert envelope.stream_id not in result, f"placed twice: {envelope.stream_id}"
                order = result[envelope.stream_id] = ExpectedOrder(
                    customer_id=data["customer_id"],
                    status="PLACED",
                    version=0,
                    total_cents=data["total_cents"],
                    line_count=len(data["lines"]),
                    total_quantity=sum(line["quantity"] for line in data["lines"]),
                    lines=data["lines"],
                )
            else:
                order = result[envelope.stream_id]
                order.status = (
                    "CANCELLED" if envelope.type == "OrderCancelled" else data["to_status"]
                )
            assert envelope.version == order.version + 1, f"log gap or repeat: {envelope}"
            order.version = envelope.version
            order.event_types.append(envelope.type)

        customers: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"order_count": 0, "total_cents": 0, "by_status": Counter()}
        )
        products: dict[str, dict[str, int]] = defaultdict(
            lambda: {"units_sold": 0, "amount_cents": 0, "order_count": 0}
        )
        for order in result.values():
            customer = customers[order.customer_id]
            customer["order_count"] += 1
            customer["by_status"][order.status] += 1
            live = order.status != "CANCELLED"
            customer["total_cents"] += order.total_cents if live else 0
            for product_id in {line["product_id"] for line in order.lines}:
                sales = products[product_id]
                if live:
                    mine = [line for line in order.lines if line["product_id"] == product_id]
                    sales["units_sold"] += sum(line["quantity"] for line in mine)
                    sales["amount_cents"] += sum(line["amount_cents"] for line in mine)
                    sales["order_count"] += 1
        for customer_id, account in accounts.items():
            # Every debit pays a live order; every credit refunds a cancelled one, once.
            debited = {line[4] for line in account.statement if line[1] == "DEBIT"}
            credited = [line[4] for line in account.statement if line[1] == "CREDIT"]
            assert len(credited) == len(set(credited)) and set(credited) <= debited
            for order_id in debited:
                assert order_id is not None and result[order_id].customer_id == customer_id
                refunded = order_id in credited
                assert refunded == (result[order_id].status == "CANCELLED"), order_id
        return cls(result, dict(customers), dict(products), accounts)


def assert_views_match(query_url: str, expected: ExpectedViews) -> None:
    """Every GET view of the query API agrees with the fold of the event log."""
    session = requests.Session()

    def get(path: str) -> Any:
        response = session.get(query_url + path, timeout=10)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    for order_id, order in expected.orders.items():
        body = get(f"/orders/{order_id}")
        got = {k: body[k] for k in ("customer_id", "status", "version", "total_cents")}
        got |= {k: body[k] for k in ("line_count", "total_quantity")}
        want = {
            "customer_id": order.customer_id,
            "status": order.status,
            "version": order.version,
            "total_cents": order.total_cents,
            "line_count": order.line_count,
            "total_quantity": order.total_quantity,
        }
        assert got == want, f"order {order_id}"
        assert [(line["product_id"], line["quantity"]) for line in body["lines"]] == [
            (line["product_id"], line["quantity"]) for line in order.lines
        ]
        history = get(f"/orders/{order_id}/history")["history"]
        assert [(h["version"], h["type"]) for h in history] == list(
            enumerate(order.event_types, start=1)
        ), f"history of {order_id}"

    for customer_id, customer in expected.customers.items():
        body = get(f"/customers/{customer_id}")
        assert body["order_count"] == customer["order_count"], customer_id
        assert body["total_cents"] == customer["total_cents"], customer_id
        assert body["orders_by_status"] == {s: customer["by_status"][s] for s in STATUSES}
        listed = _walk(session, f"{query_url}/customers/{customer_id}/orders?limit=7")
        mine = {oid for oid, o in expected.orders.items() if o.customer_id == customer_id}
        assert sorted(listed) == sorted(mine), f"orders listed for {customer_id}"

    for product_id, sales in expected.products.items():
        body = get(f"/products/{product_id}/sales")
        got_sales = {k: body[k] for k in ("units_sold", "amount_cents", "order_count")}
        assert got_sales == sales, f"sales of {product_id}"
    top = get(f"/products/top?limit={len(expected.products)}&by=amount")["products"]
    assert {p["product_id"]: p["amount_cents"] for p in top} == {
        k: v["amount_cents"] for k, v in expected.products.items()
    }

    for customer_id, account in expected.accounts.items():
        body = get(f"/accounts/{customer_id}")
        got_account = {k: body[k] for k in ("version", "balance_cents", "deposited_cents")}
        got_account |= {k: body[k] for k in ("debited_cents", "credited_cents")}
        assert got_account == {
            "version": account.version,
            "balance_cents": account.balance_cents,
            "deposited_cents": account.deposited_cents,
            "debited_cents": account.debited_cents,
            "credited_cents": account.credited_cents,
        }, f"account of {customer_id}"
        lines = _walk_statement(session, f"{query_url}/accounts/{customer_id}/statement?limit=9")
        assert lines == account.statement, f"statement of {customer_id}"
        if customer_id in expected.customers:
            shown = get(f"/customers/{customer_id}")["account"]
            assert shown["balance_cents"] == account.balance_cents

    for status in STATUSES:
        listed = _walk(session, f"{query_url}/orders?status={status}&limit=500")
        want_ids = [oid for oid, o in expected.orders.items() if o.status == status]
        assert sorted(listed) == sorted(want_ids), f"orders listed as {status}"


def _walk_statement(
    session: requests.Session, url: str
) -> list[tuple[int, str, int, int, str | None]]:
    """Every statement line, following Link rel=next, as ExpectedAccount.statement has them."""
    lines = []
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, timeout=10)
        assert response.status_code == 200, response.text
        for line in response.json()["lines"]:
            lines.append(
                (
                    line["version"],
                    line["kind"],
                    line["amount_cents"],
                    line["balance_cents"],
                    line["order_id"],
                )
            )
        link = response.headers.get("Link")
        next_url = link[1 : link.index(">")] if link else None
    return lines


def _walk(session: requests.Session, url: str) -> list[str]:
    """Follow the Link rel=next headers; all order ids listed, checking none repeats."""
    seen: list[str] = []
    next_url: str | None = url
    while next_url:
        response = session.get(next_url, timeout=10)
        assert response.status_code == 200, response.text
        seen += [order["order_id"] for order in response.json()["orders"]]
        link = response.headers.get("Link")
        next_url = link[1 : link.index(">")] if link else None
    assert len(seen) == len(set(seen)), f"an order was listed twice walking {url}"
    return seen


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

    def __init__(self, command_url: Callable[[], str], orders: int, seed: int = 7) -> None:
        self.command_url = command_url
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
        session = requests.Session()
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
        session = requests.Session()
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


def assert_acknowledged_present(
    acknowledged: Iterable[Acknowledged], log: Iterable[EventEnvelope], projected: dict[str, int]
) -> int:
    """Each acknowledged command's event is in the log and projected; the number checked."""
    in_log = {(e.stream_id, e.version) for e in log}
    checked = 0
    for ack in acknowledged:
        assert (ack.stream_id, ack.version) in in_log, f"acknowledged but not in the log: {ack}"
        assert projected.get(ack.stream_id, 0) >= ack.version, f"acknowledged, not projected: {ack}"
        checked += 1
    return checked


def pay_in_lockstep(
    command_url: str, order_ids: list[str], barrier: Any, results: Any, name: str
) -> None:
    """Run in a child process: pay each order at the same moment as the other process does.

    Puts (name, order_id, status, problem type or None) on `results` for every attempt.
    """
    session = requests.Session()
    for order_id in order_ids:
        barrier.wait(60)
        response = session.post(
            f"{command_url}/orders/{order_id}/status", json={"status": "PAID"}, timeout=30
        )
        problem = response.json().get("type") if response.status_code >= 400 else None
        results.put((name, order_id, response.status_code, problem))
