"""v1 OrderPlaced rows, written in the shape the code had before the currency field, are read
by the command side (load, pay, temporal query) and by the projection, through the upcasters.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import insert, select

from command_service.adapters.event_store import EventStore, events_table
from command_service.http.app import create_app
from query_service.read_model.tables import orders
from shared.infra.config import Settings
from tests.integration.query_support import new_read_model, project_directly
from tests.support.auth import bearer


def write_v1_order(store: EventStore, order_id: str) -> None:
    """Insert the row exactly as the v1 code stored it: schema_version 1, no currency."""
    with store.engine.begin() as conn:
        conn.execute(
            insert(events_table).values(
                position=store.head_position() + 1,
                event_id=str(uuid.uuid4()),
                stream_id=order_id,
                stream_version=1,
                event_type="OrderPlaced",
                schema_version=1,
                data={
                    "order_id": order_id,
                    "customer_id": "c-1",
                    "lines": [
                        {
                            "product_id": "p-1",
                            "quantity": 2,
                            "unit_price_cents": 1250,
                            "amount_cents": 2500,
                        }
                    ],
                    "total_cents": 2500,
                },
                metadata={"correlation_id": "old", "causation_id": "old"},
                recorded_at=datetime(2024, 5, 1, tzinfo=UTC),
            )
        )


def test_old_orders_load_pay_and_project(tmp_path: Path) -> None:
    app = create_app(Settings.from_env({"DATA_DIR": str(tmp_path), "AUTH_MODE": "dev"}))
    client: FlaskClient = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(tmp_path)["Authorization"]
    store: EventStore = app.extensions["event_store"]
    write_v1_order(store, "old-1")

    order = client.get("/orders/old-1").get_json()
    assert (order["currency"], order["total_cents"], order["status"]) == ("EUR", 2500, "PLACED")
    assert client.get("/orders/old-1?as_of_version=1").get_json()["currency"] == "EUR"
    client.post("/accounts", json={"customer_id": "c-1", "initial_deposit": "30.00"})
    paid = client.post("/orders/old-1/status", json={"status": "PAID"})
    assert paid.status_code == 200
    assert paid.get_json()["account"]["amount_cents"] == 2500

    # The log keeps the v1 row as written; new placements are written as v2.
    client.post(
        "/orders",
        json={
            "order_id": "new-1",
            "customer_id": "c-1",
            "lines": [{"product_id": "p-1", "quantity": 1, "unit_price": "1.00"}],
        },
    )
    stored = {e.stream_id: e for e in store.read_all() if e.type == "OrderPlaced"}
    assert stored["old-1"].schema_version == 1 and "currency" not in stored["old-1"].data
    assert stored["new-1"].schema_version == 2 and stored["new-1"].data["currency"] == "EUR"

    # The projection reads both shapes.
    read_model = new_read_model(f"sqlite:///{tmp_path / 'read.db'}")
    project_directly(read_model, store.read_all())
    with read_model.connect() as conn:
        rows = {r.order_id: r for r in conn.execute(select(orders))}
    read_model.dispose()
    assert rows["old-1"].status == "PAID" and rows["old-1"].total_cents == 2500
    assert rows["new-1"].status == "PLACED"
