"""How long the projector waits before retrying after a failed batch or a broker error."""

from __future__ import annotations

import threading


class Backoff:
    """Capped exponential delays, interruptible by the stop event."""

    def __init__(self, initial_s: float, maximum_s: float) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.delay_s = initial_s

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay_s)
        self.delay_s = min(self.delay_s * 2, self.maximum_s)

    def reset(self) -> None:
        self.delay_s = self.initial_s
