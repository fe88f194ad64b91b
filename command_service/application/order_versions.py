"""The versions a client expects an order to be at, and the conflict when it is not."""

from __future__ import annotations

ExpectedVersion = int | frozenset[int] | None
"""The version the client says the order is at; several (given in more than one place) must
all hold, so differing ones never do; None for any version."""


def unmet_version(expected: ExpectedVersion, version: int) -> int | None:
    """The smallest expected version an order at `version` does not meet, or None."""
    wanted = {expected} if isinstance(expected, int) else (expected or frozenset())
    return min((v for v in wanted if v != version), default=None)


class VersionConflict(Exception):
    """The order is not at the version the client expected (or changed under us repeatedly)."""

    def __init__(
        self, order_id: str, expected: int | None, current_version: int, current_status: str
    ) -> None:
        wanted = "" if expected is None else f", expected version {expected}"
        super().__init__(
            f"order {order_id!r} is at version {current_version} ({current_status}){wanted}"
        )
        self.order_id = order_id
        self.expected = expected
        self.current_version = current_version
        self.current_status = current_status
