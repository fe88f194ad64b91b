"""The pause between a command's attempts after it lost a race for a stream it writes."""

from __future__ import annotations

import random
import time

# Writers that lost the same race retry together; a random pause spreads them so one of them
# wins each round instead of all meeting again in the next group-commit batch.
_FIRST_PAUSE_S = 0.001
_LONGEST_PAUSE_S = 0.05


def pause_before_retry(attempt: int) -> None:
    """Sleep a random time, growing with the attempt (0 = the first retry), capped at 50 ms."""
    ceiling = min(_LONGEST_PAUSE_S, _FIRST_PAUSE_S * (2**attempt))
    time.sleep(random.uniform(0, ceiling))
