"""Many clients writing to the same few orders (and their customers' accounts) at once, and the
check that every 409 they got was a real conflict, judged against the event log.

Each request carries its own X-Correlation-ID, which the command service stores in the
metadata of the events it appends, so the log tells which request wrote what. A judgement:

- 200: the request's events are in the log at the version the response states.
- 409 (any): the request left no event in the log.
- 409 version-conflict with an expected version E: the log holds version E + 1 of the order,
  written by another request and recorded before the answer arrived (E was stale).
- 409 version-conflict without one (the service's retries ran out), or account-busy: another
  request wrote the order or the customer's account while this one was in flight.
- 409 invalid-transition: at the version the answer names, the log says the order had the
  status the answer names, and the lifecycle allows no move from it to the requested one.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from command_service.domain.order import ALLOWED_TRANSITIONS, OrderStatus
from shared.contract.envelope import EventEnvelope
from tests.support.auth import api_session
from tests.support.reference_model import ACCOUNT_STREAM_PREFIX
from tests.support.workload import Acknowledged

ACTIONS = ("PAID", "SHIPPED", "DELIVERED", "CANCEL")
PROBLEM = "urn:event-sourced-orders:problem:"
# An append's recorded_at is taken before it waits for the write lock, so a write that
# committed while a request was in flight may carry a time up to this much before it.
LOCK_WAIT_SLACK_S = 5.0


@dataclass(frozen=True)
class Attempt:
    """One command a client sent and what came back."""

    order_id: str | None  # None for a deposit
    customer_id: str
    action: str
    expected: int | None
    correlation_id: str
    sent_at: float
    answered_at: float
    status: int
    body: Any

    @property
    def problem(self) -> str:
        if isinstance(self.body, dict) and isinstance(self.body.get("type"), str):
            return str(self.body["type"]).removeprefix(PROBLEM)
        return ""


class HotOrders:
    """Rounds of: place a few orders, then let every client hammer them at the same moment."""

    def __init__(
        self,
        command_url: str,
        headers: Mapping[str, str],
        clients: int = 16,
        depositors: int = 2,
        rounds: int = 12,
        orders_per_round: int = 10,
        commands_per_client: int = 8,
        customers: int = 3,
        seed: int = 17,
    ) -> None:
        self.command_url = command_url
        self.headers = dict(headers)  # the bearer token every client sends
        self.clients = clients
        self.depositors = depositors
        self.rounds = rounds
        self.orders_per_round = orders_per_round
        self.commands_per_client = commands_per_client
        self.customers = [f"hot-{n}" for n in range(customers)]
        self.seed = seed
        self.attempts: list[Attempt] = []
        self.acknowledged: list[Acknowledged] = []
        self.order_customer: dict[str, str] = {}
        self._lock = threading.Lock()

    def run(self) -> None:
        session = api_session(self.headers)
        for customer_id in self.customers:
            body = {"customer_id": customer_id, "initial_deposit": "1000000.00"}
            opened = session.post(f"{self.command_url}/accounts", json=body, timeout=30)
            assert opened.status_code == 201, opened.text
            stream = ACCOUNT_STREAM_PREFIX + customer_id
            self.acknowledged.append(Acknowledged(stream, opened.json()["version"], "open"))
        for round_no in range(self.rounds):
            order_ids = [self._place(session, round_no, n) for n in range(self.orders_per_round)]
            self._hammer(round_no, order_ids)

    def _place(self, session: requests.Session, round_no: int, n: int) -> str:
        order_id = f"hot-{round_no:02d}-{n:02d}-{uuid.uuid4().hex[:6]}"
        customer_id = self.customers[(round_no + n) % len(self.customers)]
        line = {"product_id": f"p-{n % 4}", "quantity": 1 + n % 3, "unit_price": "19.99"}
        body = {"order_id": order_id, "customer_id": customer_id, "lines": [line]}
        placed = session.post(f"{self.command_url}/orders", json=body, timeout=30)
        assert placed.status_code == 201, placed.text
        self.acknowledged.append(Acknowledged(order_id, 1, "place"))
        self.order_customer[order_id] = customer_id
        return order_id

    def _hammer(self, round_no: int, order_ids: list[str]) -> None:
        barrier = threading.Barrier(self.clients + self.depositors)
        threads = [
            threading.Thread(target=self._client, args=(round_no, i, order_ids, barrier))
            for i in range(self.clients)
        ] + [
            threading.Thread(target=self._depositor, args=(round_no, i, barrier))
            for i in range(self.depositors)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _client(
        self, round_no: int, client: int, order_ids: list[str], barrier: threading.Barrier
    ) -> None:
        rng = random.Random(self.seed * 100_000 + round_no * 100 + client)
        session = api_session(self.headers)
        barrier.wait(60)
        for _ in range(self.commands_per_client):
            order_id = rng.choice(order_ids)
            action = rng.choice(ACTIONS)
            expected = None
            if rng.random() < 0.6:  # read the version first; it may be stale once we send
                current = session.get(f"{self.command_url}/orders/{order_id}", timeout=30)
                expected = current.json()["version"]
            headers: dict[str, str] = {}
            body: dict[str, Any] | None
            if action == "CANCEL":
                if expected is not None:
                    headers["If-Match"] = f'"{expected}"'
                path, body = f"/orders/{order_id}", None
            else:
                path, body = f"/orders/{order_id}/status", {"status": action}
                if expected is not None:
                    body["expected_version"] = expected
            self._send(session, method_of(action), path, body, headers, order_id, action, expected)

    def _depositor(self, round_no: int, client: int, barrier: threading.Barrier) -> None:
        session = api_session(self.headers)
        barrier.wait(60)
        for n in range(self.commands_per_client):
            customer_id = self.customers[(client + n) % len(self.customers)]
            deposit_id = f"dep-{round_no}-{client}-{n}-{uuid.uuid4().hex[:6]}"
            body = {"amount": "1.00", "deposit_id": deposit_id}
            path = f"/accounts/{customer_id}/deposits"
            self._send(session, "POST", path, body, {}, None, "DEPOSIT", None, customer_id)

    def _send(
        self,
        session: requests.Session,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        headers: dict[str, str],
        order_id: str | None,
        action: str,
        expected: int | None,
        customer_id: str | None = None,
    ) -> None:
        correlation_id = f"hot-{uuid.uuid4().hex}"
        sent_at = time.time()
        response = session.request(
            method,
            self.command_url + path,
            json=body,
            headers={**headers, "X-Correlation-ID": correlation_id},
            timeout=60,
        )
        answered_at = time.time()
        try:
            parsed = response.json()
        except ValueError:
            parsed = response.text
        attempt = Attempt(
            order_id,
            customer_id or self.order_customer[order_id or ""],
            action,
            expected,
            correlation_id,
            sent_at,
            answered_at,
            response.status_code,
            parsed,
        )
        with self._lock:
            self.attempts.append(attempt)
            if response.status_code == 200:
                self.acknowledged.extend(_acknowledged(attempt))


def method_of(action: str) -> str:
    """Cancelling is DELETE /orders/{id}; every other action a POST."""
    return "DELETE" if action == "CANCEL" else "POST"


def _acknowledged(attempt: Attempt) -> list[Acknowledged]:
    body = attempt.body
    account = ACCOUNT_STREAM_PREFIX + attempt.customer_id
    if attempt.order_id is None:
        return [Acknowledged(account, body["version"], "deposit")]
    acks = [Acknowledged(attempt.order_id, body["version"], attempt.action)]
    if "account" in body:
        acks.append(Acknowledged(account, body["account"]["version"], attempt.action))
    return acks


@dataclass
class ConflictJudgement:
    """How many answers of each kind, and every answer the log contradicts."""

    counts: Counter[str] = field(default_factory=Counter)
    unreal: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return ", ".join(f"{kind} {n}" for kind, n in sorted(self.counts.items()))


def judge_conflicts(attempts: list[Attempt], log: list[EventEnvelope]) -> ConflictJudgement:
    """Check every answer against the log (see the module docstring)."""
    by_correlation: dict[str, list[EventEnvelope]] = defaultdict(list)
    streams: dict[str, dict[int, EventEnvelope]] = defaultdict(dict)
    for event in log:
        by_correlation[str(event.metadata.get("correlation_id"))].append(event)
        assert event.version not in streams[event.stream_id], f"duplicate version: {event}"
        streams[event.stream_id][event.version] = event
    status_at = _statuses(streams)
    judgement = ConflictJudgement()
    claimed: dict[tuple[str, int], str] = {}
    for attempt in attempts:
        kind = f"{attempt.status} {attempt.problem}".strip()
        judgement.counts[
            kind + (" (with expected version)" if attempt.expected is not None else "")
        ] += 1
        written = by_correlation.get(attempt.correlation_id, [])
        problem = _judge(attempt, written, streams, status_at)
        if attempt.status == 200:
            key = (attempt.order_id or attempt.customer_id, attempt.body["version"])
            if key in claimed:
                problem = f"version {key} acknowledged twice (also {claimed[key]})"
            claimed[key] = attempt.correlation_id
        if problem is not None:
            judgement.unreal.append(f"{problem}: {attempt}")
    return judgement


def _judge(
    attempt: Attempt,
    written: list[EventEnvelope],
    streams: dict[str, dict[int, EventEnvelope]],
    status_at: dict[str, dict[int, str]],
) -> str | None:
    """What is wrong with this answer, judged by the log; None if nothing."""
    account = ACCOUNT_STREAM_PREFIX + attempt.customer_id
    stream = attempt.order_id or account
    if attempt.status == 200:
        versions = {e.version for e in written if e.stream_id == stream}
        return None if attempt.body["version"] in versions else "acknowledged, not in the log"
    if attempt.status != 409:
        return f"unexpected status {attempt.status}"
    if written:
        return f"refused but wrote {[(e.stream_id, e.version) for e in written]}"
    if attempt.problem == "version-conflict" and attempt.expected is not None:
        stale = streams[stream].get(attempt.expected + 1)
        if stale is None or stale.occurred_at.timestamp() > attempt.answered_at:
            return "version conflict, but nobody wrote past the expected version in time"
        return None
    if attempt.problem in ("version-conflict", "account-busy"):
        if _moved_while_in_flight(attempt, [streams[stream], streams[account]]):
            return None
        return f"{attempt.problem}, but neither the order nor the account moved meanwhile"
    if attempt.problem == "invalid-transition" and attempt.order_id is not None:
        version = attempt.body["current_version"]
        event = streams[stream].get(version)
        was = status_at[stream].get(version)
        target = OrderStatus("CANCELLED" if attempt.action == "CANCEL" else attempt.action)
        if was is None or event is None or event.occurred_at.timestamp() > attempt.answered_at:
            return "invalid transition from a version not yet written"
        if was != attempt.body["current_status"]:
            return f"invalid transition: the log says {was} at v{version}"
        if target in ALLOWED_TRANSITIONS[OrderStatus(was)]:
            return f"invalid transition, but {was} -> {target} is allowed"
        if attempt.expected is not None and attempt.expected != version:
            return "invalid transition judged on another version than the expected one"
        return None
    return f"unexpected 409 {attempt.problem}"


def _moved_while_in_flight(attempt: Attempt, streams: list[dict[int, EventEnvelope]]) -> bool:
    start = attempt.sent_at - LOCK_WAIT_SLACK_S
    return any(
        start <= e.occurred_at.timestamp() <= attempt.answered_at
        for events in streams
        for e in events.values()
    )


def _statuses(streams: dict[str, dict[int, EventEnvelope]]) -> dict[str, dict[int, str]]:
    """Order stream -> version -> the order's status after that version."""
    result: dict[str, dict[int, str]] = {}
    for stream_id, events in streams.items():
        if stream_id.startswith(ACCOUNT_STREAM_PREFIX):
            continue
        status: dict[int, str] = {}
        for version in sorted(events):
            event = events[version]
            if event.type == "OrderPlaced":
                status[version] = "PLACED"
            elif event.type == "OrderCancelled":
                status[version] = "CANCELLED"
            else:
                status[version] = event.data["to_status"]
        result[stream_id] = status
    return result
