"""Creating a process's tables at start, waiting for a database that is not reachable yet."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError

from shared.infra.backoff import Backoff

log = logging.getLogger("shared.schema_startup")


def create_schema_when_reachable(
    create: Callable[[], None],
    stopping: Callable[[], bool],
    sleep: Callable[[float], object] = time.sleep,
) -> bool:
    """Run `create` until it succeeds (True) or `stopping()` (False), retrying database errors.

    A database that is restarting, or not up yet when a host boots, is an outage to wait out,
    as the running loops do; exiting would leave the restart to a supervisor that may not exist.
    """
    backoff = Backoff()
    while not stopping():
        try:
            create()
            return True
        except SQLAlchemyError as exc:
            delay = backoff.next_delay()
            log.warning(
                "creating the schema failed; retrying",
                extra={"error": repr(exc), "retry_in_s": round(delay, 3)},
            )
            sleep(delay)
    return False
