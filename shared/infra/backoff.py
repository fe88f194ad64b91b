"""How long a process waits before retrying a broker or database that failed."""

from __future__ import annotations

import random
import threading

BACKOFF_INITIAL_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


class Backoff:
    """Exponential backoff with jitter, capped, reset after a success."""

    def __init__(self, initial: float = BACKOFF_INITIAL_SECONDS, cap: float = BACKOFF_MAX_SECONDS):
        self.initial = initial
        self.cap = cap
        self.failures = 0

    @property
    def delay_s(self) -> float:
        """The delay the next attempt would wait at most (before jitter)."""
        return min(self.cap, self.initial * 2.0**self.failures)

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles it up to the cap."""
        delay = self.delay_s
        # Bounded so the float power cannot overflow after a very long outage.
        self.failures = min(self.failures + 1, 32)
        # Jitter keeps several clients from hammering a recovering peer in lockstep.
        return delay * random.uniform(0.5, 1.0)

    def wait(self, stop: threading.Event) -> None:
        """Sleep for the next delay, or until `stop` is set."""
        stop.wait(self.next_delay())

    def reset(self) -> None:
        """Start again from the initial delay, after a success."""
        self.failures = 0
