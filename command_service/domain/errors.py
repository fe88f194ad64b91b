"""Domain errors: a rejected command is an expected outcome, never a crash."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule violation the domain reports."""


class InvalidCommand(DomainError):
    """A command's field breaks a business rule."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class OrderNotFound(DomainError):
    """A command names an order that has no events."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order {order_id!r} does not exist")
        self.order_id = order_id


class OrderAlreadyExists(DomainError):
    """PlaceOrder for an order id that is already taken."""

    def __init__(self, order_id: str, version: int, status: str) -> None:
        super().__init__(f"order {order_id!r} already exists (version {version}, status {status})")
        self.order_id = order_id
        self.version = version
        self.status = status


class InvalidTransition(DomainError):
    """A status change the lifecycle does not allow from the current status."""

    def __init__(self, order_id: str, current: str, target: str, version: int) -> None:
        super().__init__(
            f"order {order_id!r} is {current} (version {version}); cannot move it to {target}"
        )
        self.order_id = order_id
        self.current = current
        self.target = target
        self.version = version
