"""Waiting for something to become true: a condition polled to a deadline, an HTTP endpoint."""

from __future__ import annotations

import http.client
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

__all__ = ["http_ok", "wait_until"]

T = TypeVar("T")

# An explicit empty proxy map: an http_proxy in the environment must not route our loopback
# health checks elsewhere.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    message: str | Callable[[], str] = "condition not met",
    interval: float = 0.05,
) -> T:
    """Poll until condition() returns something truthy and return it; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:.0f}s: {text}")
        time.sleep(interval)


def http_ok(url: str, timeout: float = 1.0) -> bool:
    """Whether GET url answers 200, asked directly (never through a proxy)."""
    try:
        with _NO_PROXY.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):  # URLError and HTTPError are OSErrors
        return False
