"""HTTP routes of the command service: parse, call the application layer, map the result."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

from flask import Blueprint, Response, current_app, jsonify, request

from command_service.application.as_of import AsOf
from command_service.application.commands import CommandContext
from command_service.application.orders import CommandResult, OrderService
from command_service.domain import order as domain
from command_service.domain.order import price_to_cents
from command_service.http.idempotency import idempotent, recorder_for
from command_service.http.json_body import read_json_body
from command_service.http.schemas import (
    CANCEL_ORDER,
    CHANGE_STATUS,
    PLACE_ORDER,
    load_or_raise,
)
from shared.contract.money import format_cents
from shared.http.correlation import current_correlation_id
from shared.http.errors import Problem

orders = Blueprint("orders", __name__)

MAX_PAGE = 1000
MAX_POSITION = 2**63 - 1  # log positions are 64-bit integers; a larger ?after= is a 400, not a 500


def _service() -> OrderService:
    service: OrderService = current_app.extensions["order_service"]
    return service


def command_context(render: Callable[[Any], Response] | None = None) -> CommandContext:
    """The command's context: its correlation id, and (with an Idempotency-Key) a recorder
    that stores the response `render` makes of the result, with the command's events."""
    recorder = recorder_for(render) if render is not None else None
    return CommandContext(correlation_id=current_correlation_id(), recorder=recorder)


class CommandOutcome(Protocol):
    """What every command's result has: the stream's new version, and whether it is a replay."""

    @property
    def version(self) -> int: ...

    @property
    def replayed(self) -> bool: ...


def command_response(
    result: CommandOutcome,
    body: Mapping[str, Any],
    status: int = 200,
    location: str | None = None,
) -> Response:
    """A command's JSON result with the new version as ETag, Idempotent-Replayed on a replay,
    and Location when it created a resource (orders and accounts alike)."""
    response = versioned_response(body, result.version)
    response.status_code = status
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if location is not None:
        response.headers["Location"] = location
    return response


def versioned_response(body: Mapping[str, Any], version: int) -> Response:
    """JSON `body` with the stream's version as its ETag (send it back in If-Match)."""
    response = jsonify(body)
    response.headers["ETag"] = f'"{version}"'
    return response


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
@idempotent
def place_order() -> Response:
    payload = load_or_raise(PLACE_ORDER, read_json_body())
    command = domain.PlaceOrder(
        order_id=payload.get("order_id") or str(uuid.uuid4()),
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
@idempotent
def change_status(order_id: str) -> Response:
    payload = load_or_raise(CHANGE_STATUS, read_json_body())
    expected = _expected_version(payload.get("expected_version"))
    command = domain.ChangeOrderStatus(order_id, domain.OrderStatus(payload["status"]))
    result = _service().change_status(command, expected, command_context(_ok_response))
    return _ok_response(result)


@orders.delete("/orders/<order_id>")
@idempotent
def cancel_order(order_id: str) -> Response:
    payload = load_or_raise(CANCEL_ORDER, read_json_body(required=False))
    expected = _expected_version(payload.get("expected_version"))
    command = domain.CancelOrder(order_id, payload.get("reason"))
    result = _service().cancel_order(command, expected, command_context(_ok_response))
    return _ok_response(result)


def _ok_response(result: CommandResult) -> Response:
    return command_response(result, _order_result(result))


@orders.get("/orders/<order_id>")
def get_order(order_id: str) -> Response:
    """The order as rebuilt from its events: strongly consistent, unlike the query service."""
    state = _service().order_state(order_id, as_of_from_query())
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
def order_events(order_id: str) -> Response:
    events = _service().order_events(order_id)
    return jsonify(
        order_id=order_id,
        version=events[-1].version,
        events=[event.to_dict() for event in events],
    )


@orders.get("/events")
def log_page() -> Response:
    after = _query_int("after", default=0, low=0, high=MAX_POSITION)
    limit = _query_int("limit", default=100, low=1, high=MAX_PAGE)
    # Built as text from the stored rows: jsonify of decoded events was most of the feed's cost.
    body = _service().log_page_json(after, limit)
    return Response(f"{body}\n", mimetype="application/json")


def as_of_from_query() -> AsOf | None:
    """?as_of_version=N or ?as_of=<ISO 8601 time with offset> (not both); None for "now"."""
    has_version, has_moment = "as_of_version" in request.args, "as_of" in request.args
    if has_version and has_moment:
        raise _invalid_query_parameter(
            "as_of",
            "Give as_of_version or as_of, not both.",
            "Not allowed together with as_of_version.",
        )
    if has_version:
        return AsOf(version=_query_int("as_of_version", 0, 1))
    if has_moment:
        raw = request.args["as_of"]
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is None or moment.tzinfo is None:
            raise _invalid_query_parameter(
                "as_of",
                f"as_of must be an ISO 8601 time with a UTC offset, e.g. "
                f"2026-11-26T10:00:00Z (got {raw[:100]!r}).",
                "Must be an ISO 8601 time with an offset.",
            )
        return AsOf(moment=moment)
    return None


def _query_int(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    bounds = f"between {low} and {high}" if high is not None else f">= {low}"
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < low or (high is not None and value > high):
        raise _invalid_query_parameter(
            name,
            f"Query parameter {name!r} must be an integer {bounds} (got {raw!r}).",
            f"Must be an integer {bounds}.",
        )
    return value


def _invalid_query_parameter(name: str, detail: str, message: str) -> Problem:
    """400 naming the one query parameter that is wrong."""
    return Problem(
        400,
        "invalid-query-parameter",
        "Invalid query parameter",
        detail,
        {"errors": {name: [message]}},
    )


def _expected_version(from_body: Any) -> int | None:
    """The expected version from If-Match, ?expected_version= or the body; they must agree."""
    candidates: dict[str, int] = {}
    if_match = request.headers.get("If-Match")
    if if_match is not None:
        candidates["If-Match"] = _parse_version("If-Match", if_match.strip().removeprefix("W/"))
    if "expected_version" in request.args:
        candidates["expected_version (query)"] = _query_int("expected_version", 0, 1)
    if from_body is not None:
        candidates["expected_version"] = int(from_body)
    if len(set(candidates.values())) > 1:
        raise Problem(
            400,
            "ambiguous-expected-version",
            "Conflicting expected versions",
            f"The expected version is given more than once with different values: {candidates}.",
        )
    return next(iter(candidates.values()), None)


def _parse_version(name: str, raw: str) -> int:
    text = raw.strip('"')
    if not text.isdigit() or int(text) < 1:
        raise Problem(
            400,
            "invalid-header",
            "Invalid header",
            f'{name} must be the order version as a positive integer, e.g. "3" (got {raw!r}).',
            {"errors": {name: ["Must be a positive integer version."]}},
        )
    return int(text)
