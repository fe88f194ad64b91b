"""orders_client: a typed Python client of the event-sourced order platform's two HTTP APIs.

    from orders_client import Client, LineItem

    with Client("http://localhost:8001", "http://localhost:8002", token) as client:
        placed = client.place_order("c-42", [LineItem("p-7", 2, 1250)])
        order = client.order(placed.order_id, min_version=placed.version)

It imports nothing of the services: it is what another team installs
(`pip install 'event-sourced-orders[client]'`), and it speaks only HTTP.
"""

from orders_client.client import Client
from orders_client.command_results import (
    AccountMovement,
    AccountResult,
    CommandResult,
    LineItem,
)
from orders_client.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    Forbidden,
    NotFound,
    OrdersClientError,
    ProblemError,
    ProjectionBehind,
    ServerError,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
)
from orders_client.event_log import (
    AccountState,
    EventsPage,
    OrderState,
    OrderStateLine,
    StoredEvent,
)
from orders_client.problem_types import (
    AccountAlreadyExists,
    AccountBusy,
    AccountNotFound,
    AccountRequired,
    CustomerNotFound,
    IdempotencyKeyReused,
    InsufficientFunds,
    InsufficientScope,
    InvalidHeader,
    InvalidQueryParameter,
    InvalidToken,
    InvalidTransition,
    NotAtThatPoint,
    OrderAlreadyExists,
    OrderIdTaken,
    OrderNotFound,
    PaymentRuleViolated,
    ProductNotFound,
    TooManyWaiters,
    ValidationFailed,
    VersionConflict,
)
from orders_client.read_model import (
    Account,
    Actor,
    Customer,
    HistoryEntry,
    Order,
    OrderHistory,
    OrderLine,
    OrderPage,
    OrderSummary,
    ProductSales,
    Statement,
    StatementLine,
)
from orders_client.transport import Retry

__all__ = [
    "Account",
    "AccountAlreadyExists",
    "AccountBusy",
    "AccountMovement",
    "AccountNotFound",
    "AccountRequired",
    "AccountResult",
    "AccountState",
    "Actor",
    "BadRequest",
    "Client",
    "CommandResult",
    "Conflict",
    "ConnectionFailed",
    "Customer",
    "CustomerNotFound",
    "EventsPage",
    "Forbidden",
    "HistoryEntry",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "InsufficientScope",
    "InvalidHeader",
    "InvalidQueryParameter",
    "InvalidToken",
    "InvalidTransition",
    "LineItem",
    "NotAtThatPoint",
    "NotFound",
    "Order",
    "OrderAlreadyExists",
    "OrderHistory",
    "OrderIdTaken",
    "OrderLine",
    "OrderNotFound",
    "OrderPage",
    "OrderState",
    "OrderStateLine",
    "OrderSummary",
    "OrdersClientError",
    "PaymentRuleViolated",
    "ProblemError",
    "ProductNotFound",
    "ProductSales",
    "ProjectionBehind",
    "Retry",
    "ServerError",
    "ServiceUnavailable",
    "Statement",
    "StatementLine",
    "StoredEvent",
    "TooManyRequests",
    "TooManyWaiters",
    "Unauthorized",
    "Unprocessable",
    "ValidationFailed",
    "VersionConflict",
]
