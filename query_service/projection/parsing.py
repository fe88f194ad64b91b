"""The read side's reading of the event contract: envelopes -> typed, validated order and
account events (the types are in events.py).

The query service depends on the JSON contract (the command side's event codec), not
on the command side's code, so the two can be deployed and versioned separately.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from query_service.projection.events import (
    ACCOUNT_TYPES,
    CANCELLED,
    EVENT_TYPES,
    MAX_ID_LENGTH,
    ORDER_STATUSES,
    AccountCredited,
    AccountDebited,
    AccountEvent,
    AccountOpened,
    Actor,
    Event,
    FundsDeposited,
    Line,
    OrderCancelled,
    OrderEvent,
    OrderPlaced,
    OrderStatusChanged,
    UnprojectableEvent,
    account_stream,
    is_identifier,
)
from shared.contract.envelope import EnvelopeError, EventEnvelope
from shared.contract.upcasting import EVENT_SCHEMAS, UnsupportedSchema

# Stricter than is_identifier: the contract keeps ':' out of customer ids of accounts, so an
# account stream id (account:<customer_id>) always names exactly one customer.
_ACCOUNT_CUSTOMER_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def parse_message(value: bytes | None) -> Event:
    """Kafka message value -> order or account event, or UnprojectableEvent."""
    if value is None:
        raise UnprojectableEvent("message has no value (tombstone)")
    # orjson, not EventEnvelope.from_json's json module: decoding was a tenth of the
    # projector's time. It is stricter (no NaN, integers within 64 bits), which only parks
    # values no command service writes.
    try:
        raw = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise UnprojectableEvent(f"envelope is not JSON: {exc}") from exc
    return parse_raw(raw)


def parse_raw(raw: Any) -> Event:
    """The dict form served by the command API -> order or account event, or UnprojectableEvent."""
    try:
        envelope = EventEnvelope.from_dict(raw)
    except EnvelopeError as exc:
        raise UnprojectableEvent(str(exc)) from exc
    return parse_event(envelope)


def parse_event(envelope: EventEnvelope) -> Event:
    """Upcast an envelope to its type's current schema, validate its data, and type it."""
    if envelope.type not in EVENT_TYPES:
        raise UnprojectableEvent(f"unsupported event type {envelope.type}")
    try:
        envelope = EVENT_SCHEMAS.upcast(envelope)
    except UnsupportedSchema as exc:
        raise UnprojectableEvent(f"unsupported event: {exc}") from exc
    try:
        if envelope.type in ACCOUNT_TYPES:
            return _parse_account(envelope)
        return _parse_order(envelope)
    except (KeyError, TypeError, ValueError) as exc:
        raise UnprojectableEvent(f"invalid {envelope.type} v{envelope.version}: {exc}") from exc


def _parse_order(envelope: EventEnvelope) -> OrderEvent:
    data = envelope.data
    order_id = _identifier(data, "order_id")
    if order_id != envelope.stream_id:
        raise ValueError(f"data.order_id {order_id!r} is not the stream id {envelope.stream_id!r}")
    version = envelope.version
    if version < 1:
        raise ValueError("version must be >= 1")
    # Positional arguments: keyword dicts per event showed in the rebuild's profile.
    event_id = _text(envelope.event_id, "event_id")
    customer_id = _identifier(data, "customer_id")
    position, occurred_at = envelope.position, envelope.occurred_at
    by = _actor(envelope.metadata)
    if (envelope.type == "OrderPlaced") != (version == 1):
        raise ValueError("an order stream starts with OrderPlaced at version 1, and only there")
    if envelope.type == "OrderPlaced":
        lines = _lines(data)
        total = _amount(data, "total_cents")
        if total != sum(line.quantity * line.unit_price_cents for line in lines):
            raise ValueError("total_cents is not the sum of the lines")
        return OrderPlaced(
            event_id, order_id, customer_id, version, position, occurred_at, lines, total, by=by
        )
    if envelope.type == "OrderStatusChanged":
        to_status = _status(data, "to_status")
        if to_status in ("PLACED", CANCELLED):
            raise ValueError(f"a status change cannot move an order to {to_status}")
        return OrderStatusChanged(
            event_id,
            order_id,
            customer_id,
            version,
            position,
            occurred_at,
            from_status=_status(data, "from_status"),
            to_status=to_status,
            total_cents=_amount(data, "total_cents"),
            by=by,
        )
    reason = data.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValueError("reason must be a string or null")
    return OrderCancelled(
        event_id,
        order_id,
        customer_id,
        version,
        position,
        occurred_at,
        previous_status=_status(data, "previous_status"),
        lines=_lines(data),
        total_cents=_amount(data, "total_cents"),
        reason=reason,
        by=by,
    )


def _parse_account(envelope: EventEnvelope) -> AccountEvent:
    data = envelope.data
    customer_id = data["customer_id"]
    if not isinstance(customer_id, str) or not _ACCOUNT_CUSTOMER_ID.fullmatch(customer_id):
        raise ValueError("customer_id must be 1 to 64 characters of [A-Za-z0-9._-]")
    if envelope.stream_id != account_stream(customer_id):
        raise ValueError(f"stream id {envelope.stream_id!r} is not {account_stream(customer_id)!r}")
    version = envelope.version
    if version < 1:
        raise ValueError("version must be >= 1")
    if (envelope.type == "AccountOpened") != (version == 1):
        raise ValueError("an account stream starts with AccountOpened at version 1, and only there")
    event_id = _text(envelope.event_id, "event_id")
    position, occurred_at = envelope.position, envelope.occurred_at
    if envelope.type == "AccountOpened":
        return AccountOpened(event_id, customer_id, version, position, occurred_at)
    if envelope.type == "FundsDeposited":
        deposit_id = data.get("deposit_id")
        return FundsDeposited(
            event_id,
            customer_id,
            version,
            position,
            occurred_at,
            amount_cents=_count(data, "amount_cents"),
            balance_cents=_amount(data, "balance_cents"),
            deposit_id=None if deposit_id is None else _identifier(data, "deposit_id"),
        )
    movement = AccountDebited if envelope.type == "AccountDebited" else AccountCredited
    return movement(
        event_id,
        customer_id,
        version,
        position,
        occurred_at,
        order_id=_identifier(data, "order_id"),
        amount_cents=_amount(data, "amount_cents"),
        balance_cents=_amount(data, "balance_cents"),
    )


def _actor(metadata: dict[str, Any]) -> Actor | None:
    """metadata.principal -> Actor; None for events stored before principals were recorded.

    Its jti is left in the log: it names a credential, and the views only need who acted.
    Lengths are not limited (the token's size bounds them): the columns are Text.
    """
    raw = metadata.get("principal")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("metadata.principal must be an object")
    sub = raw.get("sub")
    if not isinstance(sub, str) or not sub:
        raise ValueError("metadata.principal.sub must be a non-empty string")
    return Actor(
        sub,
        _optional_text(raw, "iss"),
        _optional_text(raw, "customer_id"),
        _optional_text(raw, "client_id"),
    )


def _optional_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"metadata.principal.{key} must be a string")
    return value


def _lines(data: dict[str, Any]) -> tuple[Line, ...]:
    raw_lines = data["lines"]
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ValueError("lines must be a non-empty list")
    lines = []
    for raw in raw_lines:
        if not isinstance(raw, dict):
            raise ValueError("each line must be an object")
        product_id = _identifier(raw, "product_id")
        line = Line(product_id, _count(raw, "quantity"), _amount(raw, "unit_price_cents"))
        if "amount_cents" in raw and raw["amount_cents"] != line.amount_cents:
            raise ValueError(f"line amount of {line.product_id} is not quantity x unit price")
        lines.append(line)
    return tuple(lines)


def _identifier(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not is_identifier(value):
        raise ValueError(f"{key} must be 1 to {MAX_ID_LENGTH} characters of [A-Za-z0-9._:-]")
    return value


def _text(value: str, name: str) -> str:
    if len(value) > MAX_ID_LENGTH:
        raise ValueError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return value


def _status(raw: dict[str, Any], key: str) -> str:
    value = raw[key]
    if value not in ORDER_STATUSES:
        raise ValueError(f"{key} must be one of {', '.join(ORDER_STATUSES)}")
    return str(value)


def _amount(raw: dict[str, Any], key: str) -> int:
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer (cents)")
    return value


def _count(raw: dict[str, Any], key: str) -> int:
    value = _amount(raw, key)
    if value < 1:
        raise ValueError(f"{key} must be at least 1")
    return value
