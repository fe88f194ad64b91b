"""The peer for the HTTP benchmark: POST /orders as a user would write it with the
`eventsourcing` library's Application and Flask, instead of using this project.

Validate the body (marshmallow, the same rules as the command API's schema), create an
`Order` aggregate (an @event-decorated __init__), `save()` it through an `Orders`
Application on the library's own SQLite persistence, answer 201 {order_id, version}; a
duplicate order_id is 409. Nothing here is tuned: this is the library's durable default.

Persistence: PERSISTENCE_MODULE=eventsourcing.sqlite, SQLITE_DBNAME=$PEER_SQLITE_DBNAME.
The library switches the file to WAL and sets no synchronous pragma, so SQLite's compiled
default for WAL applies (SQLITE_DEFAULT_WAL_SYNCHRONOUS; 2 = FULL in the usual builds, as
ours runs). /healthz reports what the Application's own connection uses.

No authentication: a user's app would have its own. The benchmark sends the same bearer
header to every server, and bench/auth_cost.py measures what verifying it costs us.
"""

from __future__ import annotations

import os
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError
from flask import Flask, Response, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate

IDENTIFIER = validate.Regexp(r"^[A-Za-z0-9._-]{1,64}\Z")


class LineSchema(Schema):
    product_id = fields.String(required=True, validate=IDENTIFIER)
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(1, 10_000))
    unit_price = fields.Decimal(
        required=True, places=2, validate=validate.Range(0, 1_000_000_000, max_inclusive=False)
    )


class PlaceOrderSchema(Schema):
    order_id = fields.String(validate=IDENTIFIER)
    customer_id = fields.String(required=True, validate=IDENTIFIER)
    lines = fields.List(fields.Nested(LineSchema), required=True, validate=validate.Length(1, 100))


class Order(Aggregate):
    @event("Placed")
    def __init__(self, order_id: str, customer_id: str, lines: list[dict[str, Any]]) -> None:
        self.order_id = order_id
        self.customer_id = customer_id
        self.lines = lines
        self.status = "PLACED"

    @staticmethod
    def create_id(order_id: str, **_: Any) -> UUID:
        """The client's order id names the aggregate, so placing it twice conflicts."""
        return uuid5(NAMESPACE_URL, f"/orders/{order_id}")


class Orders(Application[UUID]):
    def place_order(self, order_id: str, customer_id: str, lines: list[dict[str, Any]]) -> Order:
        order = Order(order_id=order_id, customer_id=customer_id, lines=lines)
        self.save(order)
        return order


def persistence_env(db_name: str) -> dict[str, str]:
    """The library's SQLite persistence on one file (it creates its tables if missing)."""
    return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": db_name}


def create_app(db_name: str | None = None) -> Flask:
    orders = Orders(env=persistence_env(db_name or os.environ["PEER_SQLITE_DBNAME"]))
    schema = PlaceOrderSchema()
    app = Flask(__name__)

    @app.post("/orders")
    def place_order() -> tuple[Response, int]:
        try:
            body = schema.load(request.get_json())
        except ValidationError as error:
            return jsonify(errors=error.messages), 422
        order_id = body.get("order_id") or str(uuid4())
        try:
            order = orders.place_order(order_id, body["customer_id"], body["lines"])
        except IntegrityError:
            return jsonify(error=f"order {order_id} exists"), 409
        return jsonify(order_id=order_id, version=order.version), 201

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok", sqlite=sqlite_settings(orders))

    return app


def sqlite_settings(app: Application[UUID]) -> dict[str, Any]:
    """journal_mode and synchronous as seen on one of the Application's own connections."""
    datastore = app.factory.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("PRAGMA journal_mode")
        journal_mode = cursor.fetchone()[0]
        cursor.execute("PRAGMA synchronous")
        synchronous = cursor.fetchone()[0]
    names = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}
    return {"journal_mode": journal_mode, "synchronous": names.get(synchronous, synchronous)}
