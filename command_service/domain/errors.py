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


class OrderIdTaken(DomainError):
    """PlaceOrder for an id another customer's order already has (no details: not theirs)."""

    def __init__(self, order_id: str) -> None:
        super().__init__(f"order id {order_id!r} is taken; choose another")
        self.order_id = order_id


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


class AccountNotFound(DomainError):
    """A command needs a customer's account and there is none."""

    def __init__(self, customer_id: str) -> None:
        super().__init__(f"customer {customer_id!r} has no account")
        self.customer_id = customer_id


class AccountAlreadyExists(DomainError):
    """OpenAccount for a customer whose account is already open."""

    def __init__(self, customer_id: str, version: int, balance_cents: int) -> None:
        super().__init__(f"customer {customer_id!r} already has an account (version {version})")
        self.customer_id = customer_id
        self.version = version
        self.balance_cents = balance_cents


class InsufficientFunds(DomainError):
    """A debit larger than the balance: balances never go below zero."""

    def __init__(
        self, customer_id: str, order_id: str, balance_cents: int, amount_cents: int
    ) -> None:
        super().__init__(
            f"account of {customer_id!r} holds {balance_cents} cents; "
            f"order {order_id!r} needs {amount_cents}"
        )
        self.customer_id = customer_id
        self.order_id = order_id
        self.balance_cents = balance_cents
        self.amount_cents = amount_cents


class PaymentRuleViolated(DomainError):
    """A money movement the account's history forbids (a second debit or refund of an order)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class PaymentNeedsAccount(DomainError):
    """Paying an order debits the customer's account, and the customer has none."""

    def __init__(self, customer_id: str, order_id: str) -> None:
        super().__init__(f"customer {customer_id!r} has no account to pay order {order_id!r}")
        self.customer_id = customer_id
        self.order_id = order_id
