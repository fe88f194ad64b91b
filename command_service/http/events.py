"""The whole event log over HTTP: pages of GET /events and the log's head position."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from command_service.application.orders import OrderService
from command_service.http.query_params import query_int
from shared.contract.principal import EVENTS_READ
from shared.http.auth import requires

events = Blueprint("events", __name__)

MAX_PAGE = 1000
MAX_POSITION = 2**63 - 1  # log positions are 64-bit integers; a larger ?after= is a 400, not a 500


def _service() -> OrderService:
    service: OrderService = current_app.extensions["order_service"]
    return service


@events.get("/events")
@requires(EVENTS_READ)
def log_page() -> Response:
    """A page of the log after ?after=, as stored (consumers upcast)."""
    after = query_int("after", default=0, low=0, high=MAX_POSITION)
    limit = query_int("limit", default=100, low=1, high=MAX_PAGE)
    # Built as text from the stored rows: jsonify of decoded events was most of the feed's cost.
    body = _service().log_page_json(after, limit)
    return Response(f"{body}\n", mimetype="application/json")


@events.get("/events/head")
@requires(EVENTS_READ)
def log_head() -> Response:
    """The newest log position (0 for an empty log): rebuild progress, audits."""
    return jsonify(head_position=_service().store.head_position())
