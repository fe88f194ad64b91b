"""Sending one request with retries: bearer token, Idempotency-Key, backoff, Retry-After.

What is retried, and why it is safe:
- no answer (refused, dropped, timed out): a GET, a command with an Idempotency-Key (the
  service answers a resend with the first command's stored result), or any request that was
  never sent (connection refused);
- 503 (nothing was recorded), 502 and 504 (a gateway's; retried like no answer);
- 429 (a query API full of waiting reads) and 409 account-busy (nothing recorded; the service
  says to resend), after Retry-After when the service sends one.
Every other 4xx is the service's answer to this request and is raised at once.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from orders_client.errors import ConnectionFailed, ProblemError
from orders_client.problem_types import problem_error

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
RESEND_ALWAYS = frozenset({503})
RESEND_IF_SAFE = frozenset({502, 504})  # a gateway's: the service may have seen the request
RESEND_SLUGS = frozenset({"account-busy", "too-many-waiters"})
MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class Retry:
    """One resend about to happen: which attempt failed, why, and how long the client waits."""

    method: str
    url: str
    attempt: int  # the attempt that failed, from 1
    reason: str  # "no answer: ..." or the status and problem type
    delay_s: float
    idempotency_key: str | None


@dataclass(frozen=True)
class Answer:
    """A successful response: status, parsed JSON body, headers."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def replayed(self) -> bool:
        """The service answered with the stored result of an earlier request with this key."""
        return self.headers.get(REPLAYED_HEADER) == "true"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded resends with exponential backoff (jittered), or Retry-After when given."""

    retries: int = 4
    backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """How long to wait after failed attempt number `attempt` (from 1)."""
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), MAX_RETRY_AFTER_S)
        ceiling = min(self.backoff_s * 2.0 ** (attempt - 1), self.max_backoff_s)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class Transport:
    """Sends requests with the bearer token and the retry policy; one per thread."""

    def __init__(
        self,
        token: str,
        timeout: float,
        policy: RetryPolicy,
        on_retry: Callable[[Retry], None] | None = None,
    ) -> None:
        self.timeout = timeout
        self.policy = policy
        self.on_retry = on_retry
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Accept"] = "application/json, application/problem+json"

    def close(self) -> None:
        """Close the pooled connections."""
        self.session.close()

    def send(
        self,
        method: str,
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        """Send until answered or out of retries; the answer, or the error it stands for."""
        headers = {IDEMPOTENCY_HEADER: idempotency_key} if idempotency_key is not None else {}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        safe = method == "GET" or idempotency_key is not None
        attempt = 0
        while True:
            attempt += 1
            last = attempt > self.policy.retries
            try:
                response = self.session.request(
                    method, url, json=body, params=query, headers=headers, timeout=self.timeout
                )
            except requests.RequestException as exc:
                if last or not (safe or _never_sent(exc)):
                    raise ConnectionFailed(method, url, attempt, exc) from exc
                self._wait(method, url, attempt, f"no answer: {exc}", None, idempotency_key)
                continue
            if response.status_code < 400:
                return Answer(response.status_code, _json(response), response.headers)
            error = problem_error(response.status_code, _json(response), response.headers)
            if last or not _resend(error, safe):
                raise error
            retry_after = response.headers.get("Retry-After")
            reason = f"{error.status} {error.type}"
            self._wait(method, url, attempt, reason, retry_after, idempotency_key)

    def _wait(
        self,
        method: str,
        url: str,
        attempt: int,
        reason: str,
        retry_after: str | None,
        key: str | None,
    ) -> None:
        delay = self.policy.delay(attempt, retry_after)
        if self.on_retry is not None:
            self.on_retry(Retry(method, url, attempt, reason, delay, key))
        time.sleep(delay)


def _resend(error: ProblemError, safe: bool) -> bool:
    if error.status in RESEND_ALWAYS or error.slug in RESEND_SLUGS:
        return True
    return error.status in RESEND_IF_SAFE and safe


def _never_sent(exc: requests.RequestException) -> bool:
    """The connection could not be made, so the service never saw the request."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    cause = exc.args[0] if exc.args else None
    return isinstance(cause, MaxRetryError) and isinstance(cause.reason, NewConnectionError)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None  # not JSON (a proxy's page): the error says the status only
