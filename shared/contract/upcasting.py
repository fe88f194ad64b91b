"""Event schema evolution: the log keeps each event in the shape it was written in; readers
upcast old shapes to the current one, one version step at a time, before decoding.

Both services read through this chain (the command side when it loads aggregates, the query
side when it projects), so a new shape is introduced by bumping the version in CURRENT and
adding one step here (and the new shape's JSON Schema in `event_schemas.py`: the AsyncAPI
tests fail without it); stored rows are never rewritten. The relay publishes events as stored,
with their schema_version, so other consumers can upcast the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from shared.contract.envelope import EventEnvelope

Upcast = Callable[[dict[str, Any]], dict[str, Any]]

# v1 OrderPlaced events had no currency field: every order was in the platform's only
# currency, which v2 states explicitly.
V1_ORDER_CURRENCY = "EUR"


class UnsupportedSchema(ValueError):
    """An event type this code does not know, or a schema version it cannot bring up to date."""


@dataclass(frozen=True)
class UpcasterChain:
    """Per event type: the current schema version, and a step from each older version."""

    current: Mapping[str, int]
    steps: Mapping[tuple[str, int], Upcast]

    def upcast(self, envelope: EventEnvelope) -> EventEnvelope:
        """The envelope with data in the current shape of its type (the same object if it is)."""
        target = self.current.get(envelope.type)
        if target is None:
            raise UnsupportedSchema(f"unknown event type {envelope.type!r}")
        version, data = envelope.schema_version, envelope.data
        if version > target:
            raise UnsupportedSchema(
                f"{envelope.type} v{version} is newer than this code (v{target}); upgrade it"
            )
        if version == target:
            return envelope
        while version < target:
            step = self.steps.get((envelope.type, version))
            if step is None:
                raise UnsupportedSchema(f"no upcaster from {envelope.type} v{version}")
            data = step(dict(data))
            version += 1
        return replace(envelope, schema_version=version, data=data)


def _order_placed_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": V1_ORDER_CURRENCY}


EVENT_SCHEMAS = UpcasterChain(
    current={
        "OrderPlaced": 2,
        "OrderStatusChanged": 1,
        "OrderCancelled": 1,
        "AccountOpened": 1,
        "FundsDeposited": 1,
        "AccountDebited": 1,
        "AccountCredited": 1,
    },
    steps={("OrderPlaced", 1): _order_placed_v1_to_v2},
)
