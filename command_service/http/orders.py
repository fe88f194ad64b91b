"""HTTP routes of the command service: parse, call the application layer, map the result."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from command_service.application.order_results import CommandResult
from command_service.application.orders import OrderService
from command_service.domain import order as domain
from command_service.domain.order import price_to_cents
from command_service.http.command_results import (
    command_context,
    command_response,
    versioned_response,
)
from command_service.http.idempotency import idempotent
from command_service.http.json_body import read_json_body
from command_service.http.query_params import as_of_from_query, expected_version
from command_service.http.schemas import (
    CANCEL_ORDER,
    CHANGE_STATUS,
    PLACE_ORDER,
    load_or_raise,
)
from shared.contract.money import format_cents
from shared.contract.principal import EVENTS_READ, ORDERS_FULFIL, ORDERS_WRITE, READ_ALL, READ_OWN
from shared.http.auth import current_principal, requires
from shared.http.random_ids import uuid4_text

orders = Blueprint("orders", __name__)


def _service() -> OrderService:
    service: OrderService = current_app.extensions["order_service"]
    return service


def _order_result(result: CommandResult) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": result.order_id,
        "version": result.version,
        "position": result.position,
        "status": result.status,
    }
    if result.account is not None:
        movement = result.account
        body["account"] = {
            "customer_id": movement.customer_id,
            "version": movement.version,
            "movement": movement.kind,
            "amount_cents": movement.amount_cents,
            "amount": format_cents(movement.amount_cents),
            "balance_cents": movement.balance_cents,
            "balance": format_cents(movement.balance_cents),
        }
    return body


@orders.post("/orders")
@requires(ORDERS_WRITE)
@idempotent
def place_order() -> Response:
    payload = load_or_raise(PLACE_ORDER, read_json_body())
    command = domain.PlaceOrder(
        order_id=payload.get("order_id") or uuid4_text(),
        customer_id=payload["customer_id"],
        lines=tuple(
            domain.OrderLine(
                line["product_id"],
                line["quantity"],
                price_to_cents(f"lines.{i}.unit_price", line["unit_price"]),
            )
            for i, line in enumerate(payload["lines"])
        ),
    )
    return _placed_response(_service().place_order(command, command_context(_placed_response)))


def _placed_response(result: CommandResult) -> Response:
    # What url_for("orders.get_order", ...) gives, built by hand: url_for was 5% of the
    # route's own work, and an order id (see IDENTIFIER_RULE) never needs quoting.
    location = f"{request.script_root}/orders/{result.order_id}"
    return command_response(result, _order_result(result), 201, location)


@orders.post("/orders/<order_id>/status")
@requires(ORDERS_WRITE, ORDERS_FULFIL)
@idempotent
def change_status(order_id: str) -> Response:
    payload = load_or_raise(CHANGE_STATUS, read_json_body())
    expected = expected_version(payload.get("expected_version"))
    command = domain.ChangeOrderStatus(order_id, domain.OrderStatus(payload["status"]))
    result = _service().change_status(command, expected, command_context(_ok_response))
    return _ok_response(result)


@orders.delete("/orders/<order_id>")
@requires(ORDERS_WRITE)
@idempotent
def cancel_order(order_id: str) -> Response:
    payload = load_or_raise(CANCEL_ORDER, read_json_body(required=False))
    expected = expected_version(payload.get("expected_version"))
    command = domain.CancelOrder(order_id, payload.get("reason"))
    result = _service().cancel_order(command, expected, command_context(_ok_response))
    return _ok_response(result)


def _ok_response(result: CommandResult) -> Response:
    return command_response(result, _order_result(result))


@orders.get("/orders/<order_id>")
@requires(READ_OWN, READ_ALL)
def get_order(order_id: str) -> Response:
    """The order as rebuilt from its events: strongly consistent, unlike the query service."""
    state = _service().order_state(order_id, current_principal(), as_of_from_query())
    body = {
        "order_id": state.order_id,
        "customer_id": state.customer_id,
        "status": str(state.status),
        "version": state.version,
        "total_cents": state.total_cents,
        "currency": state.currency,
        "lines": [
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "unit_price_cents": line.unit_price_cents,
            }
            for line in state.lines
        ],
    }
    return versioned_response(body, state.version)


@orders.get("/orders/<order_id>/events")
@requires(EVENTS_READ)
def order_events(order_id: str) -> Response:
    events = _service().order_events(order_id)
    return jsonify(
        order_id=order_id,
        version=events[-1].version,
        events=[event.to_dict() for event in events],
    )
