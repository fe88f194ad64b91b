"""The command API's OpenAPI document: request bodies from the marshmallow request schemas,
responses from `response_schemas`, every status a handler or error handler can answer.

tests/integration/test_api_contract.py checks that every route is in it and runs schemathesis
against the running service, so a handler that changes without this document fails the build.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apispec import APISpec

from command_service.http import responses as out
from command_service.http.openapi_components import (
    AS_OF,
    CHANGED,
    COMMAND_ERRORS,
    CUSTOMER_ID,
    ETAG,
    EXPECTED_VERSIONS,
    IDEMPOTENCY_KEY,
    KEY_REUSED,
    LOG_PAGE,
    NOT_READ,
    OPENED,
    ORDER_CONFLICT,
    ORDER_ID,
    PLACED,
    RESULT_HEADERS,
    money_shape,
)
from command_service.http.schemas import (
    CancelOrderSchema,
    ChangeStatusSchema,
    DepositSchema,
    Money,
    OpenAccountSchema,
    PlaceOrderSchema,
)
from shared.http import openapi as doc


def command_document() -> dict[str, Any]:
    """The command API's OpenAPI 3.1 document."""
    spec = doc.new_spec(
        "Order commands",
        "Commands on orders and accounts, appended to the event log, and the log itself.",
        "Integer fields take any JSON number without a fraction (3, 3.0 or 3e0), as JSON Schema "
        "counts them.",
    )
    doc.describe_custom_fields(spec, {Money: money_shape})
    _register_schemas(spec)
    _order_commands(spec)
    _account_commands(spec)
    _reads(spec)
    return spec.to_dict()


def _register_schemas(spec: APISpec) -> None:
    schemas = spec.components.schema
    schemas("PlaceOrder", schema=PlaceOrderSchema)
    schemas("ChangeStatus", schema=ChangeStatusSchema)
    schemas("CancelOrder", schema=CancelOrderSchema)
    # What the schemas' own validators check across fields, said in JSON Schema.
    not_both = {"initial_deposit": {"properties": {"initial_deposit_cents": False}}}
    schemas("OpenAccount", {"dependentSchemas": not_both}, schema=OpenAccountSchema)
    exactly_one = [{"required": ["amount"]}, {"required": ["amount_cents"]}]
    schemas("Deposit", {"oneOf": exactly_one}, schema=DepositSchema)
    doc.register_schemas(
        spec,
        {
            "OrderCommandResult": out.OrderCommandResultSchema,
            "OrderState": out.OrderStateSchema,
            "OrderEvents": out.OrderEventsSchema,
            "EventsPage": out.EventsPageSchema,
            "LogHead": out.LogHeadSchema,
            "AccountResult": out.AccountResultSchema,
            "AccountState": out.AccountStateSchema,
            "AccountEvents": out.AccountEventsSchema,
            "CommandReady": out.CommandReadySchema,
        },
    )


def _command(
    spec: APISpec,
    method: str,
    path: str,
    operation_id: str,
    summary: str,
    body: Mapping[str, Any],
    parameters: list[dict[str, Any]],
    responses: Mapping[int, Mapping[str, Any]],
) -> None:
    """A command: its own responses, the errors every command can meet, Idempotency-Key."""
    tag = path.split("/")[1]
    every = {**COMMAND_ERRORS, **responses}
    conflict = every[409]
    every[409] = {**conflict, "description": conflict["description"] + KEY_REUSED}
    doc.add_operation(
        spec, method, path, operation_id, summary, tag, every, [*parameters, IDEMPOTENCY_KEY], body
    )


def _read(
    spec: APISpec,
    path: str,
    operation_id: str,
    summary: str,
    tag: str,
    ok: Mapping[str, Any],
    parameters: list[dict[str, Any]],
    errors: Mapping[int, Mapping[str, Any]],
) -> None:
    """A strongly consistent read: its answers, and 503 when the log cannot be read."""
    responses = {200: ok, **errors, 503: NOT_READ}
    doc.add_operation(spec, "get", path, operation_id, summary, tag, responses, parameters)


def _order_commands(spec: APISpec) -> None:
    order_refusals = {404: doc.problem("No such order."), 409: doc.problem(ORDER_CONFLICT)}
    _command(
        spec,
        "post",
        "/orders",
        "placeOrder",
        "Place an order",
        doc.json_body("PlaceOrder", "Omit order_id to get a generated one."),
        [],
        {
            201: doc.success("Placed (or placed before with this content).", *PLACED),
            409: doc.problem("order_id is taken by an order with other content."),
        },
    )
    _command(
        spec,
        "post",
        "/orders/{order_id}/status",
        "changeOrderStatus",
        "Move an order along PLACED -> PAID -> SHIPPED -> DELIVERED; paying debits the account",
        doc.json_body("ChangeStatus", "The target status."),
        [ORDER_ID, *EXPECTED_VERSIONS],
        {200: doc.success("Changed.", *CHANGED), **order_refusals},
    )
    _command(
        spec,
        "delete",
        "/orders/{order_id}",
        "cancelOrder",
        "Cancel an order (from PLACED or PAID; a paid order is refunded)",
        doc.json_body("CancelOrder", "Optional.", required=False),
        [ORDER_ID, *EXPECTED_VERSIONS],
        {200: doc.success("Cancelled.", *CHANGED), **order_refusals},
    )


def _account_commands(spec: APISpec) -> None:
    _command(
        spec,
        "post",
        "/accounts",
        "openAccount",
        "Open a customer's account, optionally with a first deposit",
        doc.json_body("OpenAccount", "Give initial_deposit or initial_deposit_cents, or none."),
        [],
        {
            201: doc.success("Opened (or opened before with this request).", *OPENED),
            409: doc.problem("The customer already has an account, opened with another request."),
        },
    )
    _command(
        spec,
        "post",
        "/accounts/{customer_id}/deposits",
        "deposit",
        "Deposit funds (a repeated deposit_id counts once)",
        doc.json_body("Deposit", "Give amount or amount_cents."),
        [CUSTOMER_ID],
        {
            200: doc.success("Deposited.", "AccountResult", RESULT_HEADERS),
            404: doc.problem("The customer has no account."),
            409: doc.problem(
                "Refused (payment-rule-violated, e.g. a deposit_id reused with another "
                "amount), or the account kept changing (account-busy)."
            ),
        },
    )


def _reads(spec: APISpec) -> None:
    bad_as_of = {400: doc.problem("Invalid as_of_version or as_of.")}
    _read(
        spec,
        "/orders/{order_id}",
        "getOrder",
        "An order rebuilt from its events (strongly consistent)",
        "orders",
        doc.success("The order.", "OrderState", {"ETag": ETAG}),
        [ORDER_ID, *AS_OF],
        {**bad_as_of, 404: doc.problem("No such order, or none at that version or time.")},
    )
    _read(
        spec,
        "/orders/{order_id}/events",
        "getOrderEvents",
        "One order's events as stored",
        "event log",
        doc.success("The stream, oldest first.", "OrderEvents"),
        [ORDER_ID],
        {404: doc.problem("No such order.")},
    )
    _read(
        spec,
        "/accounts/{customer_id}",
        "getAccount",
        "An account rebuilt from its events (strongly consistent)",
        "accounts",
        doc.success("The account.", "AccountState", {"ETag": ETAG}),
        [CUSTOMER_ID, *AS_OF],
        {**bad_as_of, 404: doc.problem("No such account, or none at that version or time.")},
    )
    _read(
        spec,
        "/accounts/{customer_id}/events",
        "getAccountEvents",
        "One account's events as stored",
        "event log",
        doc.success("The stream, oldest first.", "AccountEvents"),
        [CUSTOMER_ID],
        {404: doc.problem("No such account.")},
    )
    _read(
        spec,
        "/events",
        "readEventLog",
        "The whole event log in position order, a page at a time",
        "event log",
        doc.success("A page; has_more says whether to ask again.", "EventsPage"),
        LOG_PAGE,
        {400: doc.problem("Invalid after or limit.")},
    )
    _read(
        spec,
        "/events/head",
        "readEventLogHead",
        "The newest position of the event log (0 while it is empty)",
        "event log",
        doc.success("The head position.", "LogHead"),
        [],
        {},
    )
    doc.add_health_paths(
        spec,
        "CommandReady",
        "The event log is unreachable, or refused a write and still refuses a probe write.",
    )
