"""Several processes' output on one terminal, as `make run` shows it."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import IO

__all__ = ["PrefixedOutput"]


class PrefixedOutput:
    """Whole lines of several processes on one stream, never interleaved, each prefixed with
    the name of the process that wrote it (in a colour of its own on a terminal)."""

    COLORS = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m")
    RESET = "\033[0m"

    def __init__(self, stream: IO[str] | None = None, name_width: int = 16) -> None:
        self._stream = stream  # None: whatever sys.stdout is when a line is written
        self._name_width = name_width
        self._lock = threading.Lock()
        self._printers = 0

    def say(self, text: str) -> None:
        """Write one line of our own (no prefix)."""
        stream = self._stream or sys.stdout
        with self._lock:
            print(text, file=stream, flush=True)

    def printer(self, name: str) -> Callable[[str], None]:
        """A callback that writes one line of process `name`, prefixed."""
        color = self.COLORS[self._printers % len(self.COLORS)]
        self._printers += 1
        label = f"{name:>{self._name_width}} |"
        if (self._stream or sys.stdout).isatty():
            label = f"{color}{label}{self.RESET}"
        return lambda line: self.say(f"{label} {line}")
