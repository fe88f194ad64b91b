"""The upcaster chain: old stored shapes become the current one, step by step. No I/O."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.contract.envelope import EventEnvelope
from shared.contract.upcasting import EVENT_SCHEMAS, UnsupportedSchema, UpcasterChain

V1_PLACED = {
    "order_id": "o-1",
    "customer_id": "c-1",
    "lines": [{"product_id": "p", "quantity": 1, "unit_price_cents": 5, "amount_cents": 5}],
    "total_cents": 5,
}


def envelope(event_type: str, schema_version: int, data: dict[str, object]) -> EventEnvelope:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    return EventEnvelope("e-1", event_type, "o-1", 1, 1, at, schema_version, data)


def test_a_v1_order_placed_gets_the_currency_it_implied() -> None:
    upcast = EVENT_SCHEMAS.upcast(envelope("OrderPlaced", 1, V1_PLACED))
    assert upcast.schema_version == 2
    assert upcast.data == {**V1_PLACED, "currency": "EUR"}
    assert "currency" not in V1_PLACED, "the stored data is not changed in place"


def test_a_current_event_is_returned_as_is() -> None:
    current = envelope("OrderPlaced", 2, {**V1_PLACED, "currency": "EUR"})
    assert EVENT_SCHEMAS.upcast(current) is current


def test_steps_chain_in_order() -> None:
    chain = UpcasterChain(
        current={"Thing": 3},
        steps={
            ("Thing", 1): lambda d: {**d, "trail": [*d["trail"], "1->2"]},
            ("Thing", 2): lambda d: {**d, "trail": [*d["trail"], "2->3"]},
        },
    )
    upcast = chain.upcast(envelope("Thing", 1, {"trail": []}))
    assert (upcast.schema_version, upcast.data["trail"]) == (3, ["1->2", "2->3"])


@pytest.mark.parametrize(
    ("event_type", "version", "message"),
    [("OrderPlaced", 3, "newer than this code"), ("Nope", 1, "unknown event type")],
)
def test_what_cannot_be_upcast_is_refused(event_type: str, version: int, message: str) -> None:
    with pytest.raises(UnsupportedSchema, match=message):
        EVENT_SCHEMAS.upcast(envelope(event_type, version, V1_PLACED))


def test_a_missing_step_is_refused() -> None:
    chain = UpcasterChain(current={"Thing": 2}, steps={})
    with pytest.raises(UnsupportedSchema, match="no upcaster"):
        chain.upcast(envelope("Thing", 1, {}))
