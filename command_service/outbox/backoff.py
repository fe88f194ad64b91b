"""How long the relay waits before retrying a broker or database that failed."""

from __future__ import annotations

import random

BACKOFF_INITIAL_SECONDS = 0.1
BACKOFF_MAX_SECONDS = 5.0


class Backoff:
    """Exponential backoff with jitter, capped, reset after a success."""

    def __init__(self, initial: float = BACKOFF_INITIAL_SECONDS, cap: float = BACKOFF_MAX_SECONDS):
        self.initial = initial
        self.cap = cap
        self.failures = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; each call doubles it up to the cap."""
        delay = min(self.cap, self.initial * 2.0**self.failures)
        # Bounded so the float power cannot overflow after a very long outage.
        self.failures = min(self.failures + 1, 32)
        # Jitter keeps several relays from hammering a recovering broker in lockstep.
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.failures = 0
