"""POST /parked/{id}/retry and /discard: admin only, audited, the retry through the projector's
version claim (a second application is a duplicate), problem+json for every refusal."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from query_service.http.app import create_app
from query_service.read_model.order_writer import ParkedEvent, park
from query_service.read_model.views import ReadViews
from shared.infra.config import Settings
from shared.infra.db import write_transaction
from tests.integration.query_support import OrderEventLog
from tests.support.auth import bearer


@pytest.fixture
def client(tmp_path: Path) -> FlaskClient:
    settings = Settings.from_env(
        {
            "DATA_DIR": str(tmp_path),
            "AUTH_MODE": "dev",
            "READ_MODEL_URL": f"sqlite:///{tmp_path / 'read_model.db'}",
            "COMMAND_API_URL": "http://127.0.0.1:9",  # no gap is repaired here
        }
    )
    app = create_app(settings)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(tmp_path, sub="op-ann")["Authorization"]
    return client


def _park(client: FlaskClient, value: bytes, offset: int, error: str = "boom") -> int:
    views: ReadViews = client.application.extensions["read_views"]
    with write_transaction(views.engine) as conn:
        park(
            conn,
            ParkedEvent(
                origin="kafka",
                error=error,
                topic="orders.events",
                partition=0,
                offset=offset,
                key=b"o-1",
                value=value,
                stream_id="o-1",
            ),
        )
    listed = client.get("/parked").get_json()["parked"]
    return int(next(p["id"] for p in listed if p["offset"] == offset))


def test_retry_applies_once_then_a_second_copy_is_a_duplicate(client: FlaskClient) -> None:
    placed = OrderEventLog().place("o-1", "c-1", [("p-1", 2, 150)]).to_json()
    first = _park(client, placed, offset=5)
    shown = client.get(f"/parked/{first}").get_json()
    assert (shown["stream_id"], shown["error"], shown["partition"]) == ("o-1", "boom", 0)
    assert '"OrderPlaced"' in shown["payload"]

    retried = client.post(f"/parked/{first}/retry", json={"reason": "bug fixed"})
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json()["outcome"] == "applied"
    assert client.get("/orders/o-1").get_json()["total_cents"] == 300
    assert client.get(f"/parked/{first}").status_code == 404
    assert client.post(f"/parked/{first}/retry").status_code == 404

    again = _park(client, placed, offset=6)
    assert client.post(f"/parked/{again}/retry").get_json()["outcome"] == "duplicate"
    assert client.get("/customers/c-1").get_json()["order_count"] == 1  # counted once
    # The retry recorded where the message was parked from; the second copy did not move it.
    messages = client.get("/orders/o-1/kafka-messages").get_json()["messages"]
    assert [(m["topic"], m["partition"], m["offset"]) for m in messages] == [
        ("orders.events", 0, 5)
    ]

    [second, first_line] = client.get("/parked/actions").get_json()["actions"][:2]
    assert (first_line["by_sub"], first_line["reason"], first_line["action"]) == (
        "op-ann",
        "bug fixed",
        "retry",
    )
    assert second["outcome"] == "duplicate" and second["reason"] is None


def test_a_failed_retry_keeps_the_row_and_a_discard_removes_it(client: FlaskClient) -> None:
    bad = _park(client, b"not json", offset=9)
    failed = client.post(f"/parked/{bad}/retry")
    assert failed.status_code == 409
    assert failed.mimetype == "application/problem+json"
    assert "envelope is not JSON" in failed.get_json()["detail"]
    kept = client.get(f"/parked/{bad}").get_json()
    assert "envelope is not JSON" in kept["error"] and kept["last_seen_at"] >= kept["first_seen_at"]

    discarded = client.post(f"/parked/{bad}/discard", json={"reason": "garbage"})
    assert discarded.get_json()["outcome"] == "discarded"
    assert client.get("/parked").get_json() == {"parked": [], "total": 0, "next_after": None}
    outcomes = [a["outcome"] for a in client.get("/parked/actions").get_json()["actions"]]
    assert outcomes == ["discarded", "failed"]


def test_refusals_are_problems_naming_the_field(client: FlaskClient, tmp_path: Path) -> None:
    parked_id = _park(client, b"{}", offset=1)
    reader = bearer(tmp_path, sub="support", scopes=["read:all"])
    assert client.post(f"/parked/{parked_id}/retry", headers=reader).status_code == 403
    long_reason = client.post(f"/parked/{parked_id}/discard", json={"reason": "x" * 501})
    assert long_reason.status_code == 422 and "reason" in long_reason.get_json()["errors"]
    unknown = client.post(f"/parked/{parked_id}/discard", json={"why": "x"})
    assert unknown.status_code == 422 and "why" in unknown.get_json()["errors"]
    malformed = client.post(
        f"/parked/{parked_id}/discard", data="{", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert client.post(f"/parked/{parked_id}/discard", data="x").status_code == 415
    assert client.post("/parked/99999999999999999999/retry").status_code == 404
    assert client.post("/parked/abc/retry").status_code == 404
    assert client.get("/parked?limit=0").get_json()["errors"].keys() == {"limit"}
    assert client.get(f"/parked/{parked_id}").status_code == 200  # nothing changed
