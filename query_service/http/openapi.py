"""The query API's OpenAPI document: query parameters from the marshmallow schemas of `params`,
responses from `response_schemas`, every status a handler or error handler can answer.

tests/integration/test_api_contract.py checks that every route is in it and runs schemathesis
against the running service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apispec import APISpec
from marshmallow import Schema

from query_service.http import responses as out
from query_service.http.api import UP_TO_DATE_HEADER, WAITERS_RETRY_AFTER_S
from query_service.http.openapi_parked import add_parked_paths
from query_service.http.params import (
    CursorField,
    CustomerOrdersArgs,
    NoArgs,
    OrderListArgs,
    StatementArgs,
    StatementCursorField,
    TopProductsArgs,
    VersionedReadArgs,
)
from query_service.read_model.pagination import ORDER_CURSOR_PATTERN, STATEMENT_CURSOR_PATTERN
from shared.http import openapi as doc

IDENTIFIER = r"^[A-Za-z0-9._:-]{1,64}$"
ACCOUNT_IDENTIFIER = r"^[A-Za-z0-9._-]{1,64}$"
CURSOR_NOTE = (
    "next_cursor of the previous page, passed back as it is. Any string of this shape is a "
    "position in the listing, so one the service did not issue is honoured too, not refused: "
    "the page starts after that position."
)
ORDER_CURSOR_SHAPE = {
    "type": "string",
    "pattern": ORDER_CURSOR_PATTERN,
    "description": "<created_at in microseconds since 1970 UTC>~<order_id>: " + CURSOR_NOTE,
    "example": "1764633600000000~o-1001",
}
STATEMENT_CURSOR_SHAPE = {
    "type": "string",
    "pattern": STATEMENT_CURSOR_PATTERN,
    "description": "The version of the last line of the previous page: " + CURSOR_NOTE,
    "example": "3",
}
# What the marshmallow fields cannot say about themselves.
PARAMETER_NOTES: dict[str, dict[str, Any]] = {
    "status": {"description": "Only orders in this status (any letter case)."},
    "customer_id": {
        "description": "Only this customer's orders. A read:own token lists only its own "
        "customer's orders, with or without it; naming another customer is 403.",
        "schema": {"pattern": IDENTIFIER},
    },
    "created_after": {"description": "Created at or after this time (ISO 8601 with offset)."},
    "created_before": {"description": "Created before this time (ISO 8601 with offset)."},
    "limit": {"description": "Items per page."},
    "min_version": {
        "description": "Read your own write: wait up to READ_YOUR_WRITES_MAX_WAIT_MS for this "
        f"version; {UP_TO_DATE_HEADER} says whether it was reached. Waits are capped per "
        "server process: beyond the cap the answer is 429."
    },
    "by": {"description": "Rank by units sold or by amount."},
}

ETAG = doc.etag_header('The projected version, e.g. "3".')
UP_TO_DATE = doc.header(
    "With ?min_version: whether the projection reached that version in time.",
    {"type": "string", "enum": ["true", "false"]},
)
NEXT_PAGE = doc.header('<url>; rel="next" when there is a next page.', {"type": "string"})
BAD_QUERY = doc.problem("A query parameter is invalid, repeated or unknown (errors names it).")
TOO_MANY_WAITERS = doc.problem(
    f"With ?min_version: every wait of this server is taken; retry after Retry-After "
    f"({WAITERS_RETRY_AFTER_S} s), or read without min_version.",
    {"Retry-After": {**doc.RETRY_AFTER, "required": True}},
)
# Another customer's resource answers exactly as a missing one, so ids cannot be probed.
HIDDEN = " A read:own token gets the same 404 for another customer's."
UNAVAILABLE = doc.unavailable("The read model database cannot answer right now.")


def query_document() -> dict[str, Any]:
    """The query API's OpenAPI 3.1 document."""
    spec = doc.new_spec(
        "Order views",
        "Eventually consistent views of orders, customers, accounts and products, projected "
        "from the event topic.",
    )
    doc.describe_custom_fields(
        spec, {CursorField: ORDER_CURSOR_SHAPE, StatementCursorField: STATEMENT_CURSOR_SHAPE}
    )
    doc.register_schemas(
        spec,
        {
            "OrderPage": out.OrderPageSchema,
            "OrderDetail": out.OrderDetailSchema,
            "OrderHistory": out.OrderHistorySchema,
            "StreamMessages": out.StreamMessagesSchema,
            "Customer": out.CustomerSchema,
            "AccountView": out.AccountViewSchema,
            "Statement": out.StatementSchema,
            "ProductSales": out.ProductSalesSchema,
            "TopProducts": out.TopProductsSchema,
            "QueryReady": out.QueryReadySchema,
            "ProjectorStatus": out.ProjectorStatusSchema,
        },
    )
    _order_paths(spec)
    _customer_and_account_paths(spec)
    _product_and_health_paths(spec)
    add_parked_paths(spec)
    return spec.to_dict()


def _query(spec: APISpec, schema: type[Schema]) -> list[dict[str, Any]]:
    parameters = doc.query_parameters(spec, schema)
    for parameter in parameters:
        notes = PARAMETER_NOTES.get(parameter["name"], {})
        parameter.update({k: v for k, v in notes.items() if k != "schema"})
        parameter["schema"].update(notes.get("schema", {}))
    return parameters


def _get(
    spec: APISpec,
    path: str,
    operation_id: str,
    summary: str,
    tag: str,
    ok: Mapping[str, Any],
    parameters: list[dict[str, Any]],
    not_found: str | None = None,
    not_found_headers: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """A read: its answers, 400 for a bad query, 404 when `not_found` says, 429 for a wait, 503."""
    responses: dict[int, Mapping[str, Any]] = {200: ok, 400: BAD_QUERY, 503: UNAVAILABLE}
    if not_found is not None:
        responses[404] = doc.problem(not_found, not_found_headers)
    if any(parameter.get("name") == "min_version" for parameter in parameters):
        responses[429] = TOO_MANY_WAITERS
    doc.add_operation(spec, "get", path, operation_id, summary, tag, responses, parameters)


def _order_paths(spec: APISpec) -> None:
    order_id = doc.id_parameter("order_id", IDENTIFIER, "order", "o-1001")
    _get(
        spec,
        "/orders",
        "listOrders",
        "Orders, newest first, filtered, a page at a time",
        "orders",
        doc.success("A page of orders.", "OrderPage", {"Link": NEXT_PAGE}),
        _query(spec, OrderListArgs),
    )
    _get(
        spec,
        "/orders/{order_id}",
        "getOrderView",
        "An order with its lines",
        "orders",
        doc.success("The order.", "OrderDetail", {"ETag": ETAG, UP_TO_DATE_HEADER: UP_TO_DATE}),
        [order_id, *_query(spec, VersionedReadArgs)],
        "The order is not in the read model (yet)." + HIDDEN,
        {UP_TO_DATE_HEADER: UP_TO_DATE},
    )
    _get(
        spec,
        "/orders/{order_id}/history",
        "getOrderHistory",
        "An order's history, oldest first",
        "orders",
        doc.success("The history.", "OrderHistory"),
        [order_id, *_query(spec, NoArgs)],
        "The order is not in the read model (yet)." + HIDDEN,
    )
    _get(
        spec,
        "/orders/{order_id}/kafka-messages",
        "getOrderKafkaMessages",
        "Where an order's events are on the topic: partition and offset, when known (read:all)",
        "orders",
        doc.success("The order's messages.", "StreamMessages"),
        [order_id, *_query(spec, NoArgs)],
        "The order is not in the read model (yet).",
    )


def _customer_and_account_paths(spec: APISpec) -> None:
    customer_id = doc.id_parameter("customer_id", IDENTIFIER, "customer", "c-42")
    _get(
        spec,
        "/customers/{customer_id}",
        "getCustomer",
        "A customer's order counts, totals and balance",
        "customers",
        doc.success("The customer.", "Customer"),
        [customer_id, *_query(spec, NoArgs)],
        "The customer has no orders and no account in the read model." + HIDDEN,
    )
    _get(
        spec,
        "/customers/{customer_id}/orders",
        "listCustomerOrders",
        "A customer's orders, newest first, a page at a time",
        "customers",
        doc.success("A page of orders.", "OrderPage", {"Link": NEXT_PAGE}),
        [customer_id, *_query(spec, CustomerOrdersArgs)],
        "The customer has no orders and no account in the read model." + HIDDEN,
    )
    account_id = doc.id_parameter("customer_id", ACCOUNT_IDENTIFIER, "customer", "c-42")
    _get(
        spec,
        "/accounts/{customer_id}",
        "getAccountView",
        "A customer's account",
        "accounts",
        doc.success("The account.", "AccountView", {"ETag": ETAG, UP_TO_DATE_HEADER: UP_TO_DATE}),
        [account_id, *_query(spec, VersionedReadArgs)],
        "The customer has no account in the read model (yet)." + HIDDEN,
        {UP_TO_DATE_HEADER: UP_TO_DATE},
    )
    _get(
        spec,
        "/accounts/{customer_id}/statement",
        "getStatement",
        "An account's movements with the running balance, oldest first",
        "accounts",
        doc.success("A page of the statement.", "Statement", {"Link": NEXT_PAGE}),
        [account_id, *_query(spec, StatementArgs)],
        "The customer has no account in the read model (yet)." + HIDDEN,
    )
    _get(
        spec,
        "/accounts/{customer_id}/kafka-messages",
        "getAccountKafkaMessages",
        "Where an account's events are on the topic: partition and offset, when known (read:all)",
        "accounts",
        doc.success("The account's messages.", "StreamMessages"),
        [account_id, *_query(spec, NoArgs)],
        "The customer has no account in the read model (yet).",
    )


def _product_and_health_paths(spec: APISpec) -> None:
    _get(
        spec,
        "/products/top",
        "topProducts",
        "Best-selling products",
        "products",
        doc.success("The products, best first.", "TopProducts"),
        _query(spec, TopProductsArgs),
    )
    _get(
        spec,
        "/products/{product_id}/sales",
        "getProductSales",
        "A product's sales",
        "products",
        doc.success("The product's sales.", "ProductSales"),
        [doc.id_parameter("product_id", IDENTIFIER, "product", "p-7"), *_query(spec, NoArgs)],
        "The product was never ordered.",
    )
    doc.add_health_paths(spec, "QueryReady", "The read model is unreachable.")
    _get(
        spec,
        "/projector/status",
        "projectorStatus",
        "The projector's positions and lag per partition, and the parked events",
        "health",
        doc.success("The projector's progress.", "ProjectorStatus"),
        [],
    )
