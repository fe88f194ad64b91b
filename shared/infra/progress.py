"""A progress bar on stderr: redrawn in place on a terminal, one line per step in logs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
REDRAW_INTERVAL_S = 0.1
LINE_INTERVAL_S = 5.0


class ProgressBar:
    """Counts done items against an optional total and shows rate and percentage."""

    def __init__(self, total: int | None, label: str, stream: TextIO | None = None) -> None:
        self.total = total if total and total > 0 else None
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._interactive = self.stream.isatty()

    def advance(self, count: int) -> None:
        """Record `count` more items done and redraw if it is time to."""
        self.done += count
        interval = REDRAW_INTERVAL_S if self._interactive else LINE_INTERVAL_S
        if time.monotonic() - self._last_draw >= interval:
            self._draw()

    def restart(self) -> None:
        """Count again from zero (a second pass over the same items)."""
        self.done = 0
        self._started = time.monotonic()

    def close(self) -> None:
        """Draw the final state and end the line."""
        self._draw()
        if self._interactive:
            self.stream.write("\n")
        self.stream.flush()

    def render(self) -> str:
        """The current bar as text (without the carriage return)."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = f"{self.done / elapsed:,.0f}/s"
        if self.total is None:
            return f"{self.label} {self.done:,} events {rate}"
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{self.label} [{bar}] {fraction:4.0%} {self.done:,}/{self.total:,} events {rate}"

    def _draw(self) -> None:
        self._last_draw = time.monotonic()
        if self._interactive:
            self.stream.write("\r" + self.render())
        else:
            self.stream.write(self.render() + "\n")
        self.stream.flush()
