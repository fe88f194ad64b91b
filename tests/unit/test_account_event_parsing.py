"""The read side's parsing of account events, built from the event contract: each valid event
parses to its typed form; anything malformed is unprojectable (parked, never dropped).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from command_service.adapters.event_codec import encode
from command_service.domain import account
from query_service.projection.events import (
    AccountCredited,
    AccountDebited,
    AccountOpened,
    FundsDeposited,
    UnprojectableEvent,
)
from query_service.projection.parsing import parse_message, parse_raw
from shared.contract.envelope import EventEnvelope

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def raw_event(event_type: str, version: int, **data: Any) -> dict[str, Any]:
    """An account envelope in the dict form the command API serves."""
    return {
        "event_id": f"evt-{version}",
        "type": event_type,
        "stream_id": "account:c-1",
        "version": version,
        "position": 40 + version,
        "occurred_at": "2025-03-01T12:00:00.000000Z",
        "schema_version": 1,
        "data": {"customer_id": "c-1", **data},
        "metadata": {"correlation_id": "corr-1"},
    }


VALID = {
    "AccountOpened": raw_event("AccountOpened", 1),
    "FundsDeposited": raw_event(
        "FundsDeposited", 2, amount_cents=5000, balance_cents=5000, deposit_id="dep-1"
    ),
    "AccountDebited": raw_event(
        "AccountDebited", 3, order_id="o-1", amount_cents=1999, balance_cents=3001
    ),
    "AccountCredited": raw_event(
        "AccountCredited", 4, order_id="o-1", amount_cents=1999, balance_cents=5000
    ),
}


def test_each_account_event_parses_to_its_typed_form() -> None:
    parsed = [parse_raw(raw) for raw in VALID.values()]

    assert parsed == [
        AccountOpened("evt-1", "c-1", 1, 41, T0),
        FundsDeposited("evt-2", "c-1", 2, 42, T0, 5000, 5000, "dep-1"),
        AccountDebited("evt-3", "c-1", 3, 43, T0, "o-1", 1999, 3001),
        AccountCredited("evt-4", "c-1", 4, 44, T0, "o-1", 1999, 5000),
    ]
    assert {event.stream_id for event in parsed} == {"account:c-1"}
    # The Kafka value is the same envelope as JSON.
    assert parse_message(json.dumps(VALID["AccountDebited"]).encode()) == parsed[2]


def test_a_deposit_without_an_id_and_a_zero_debit_are_valid() -> None:
    no_id = _with(VALID["FundsDeposited"], "data.deposit_id", None)
    assert parse_raw(no_id) == FundsDeposited("evt-2", "c-1", 2, 42, T0, 5000, 5000, None)
    absent = _with(VALID["FundsDeposited"], "data.deposit_id", _DELETE)
    assert parse_raw(absent) == parse_raw(no_id)
    free_order = _with(VALID["AccountDebited"], "data.amount_cents", 0)
    assert parse_raw(_with(free_order, "data.balance_cents", 5000)) == AccountDebited(
        "evt-3", "c-1", 3, 43, T0, "o-1", 0, 5000
    )


_DELETE = object()


def _with(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(raw)
    target = changed
    *parents, last = path.split(".")
    for key in parents:
        target = target[key]
    if value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return changed


@pytest.mark.parametrize(
    ("event_type", "path", "value", "message"),
    [
        ("AccountOpened", "schema_version", 2, "newer than this code"),
        ("AccountOpened", "version", 2, "starts with AccountOpened"),
        ("AccountOpened", "version", 0, "version must be >= 1"),
        ("AccountOpened", "stream_id", "c-1", "is not 'account:c-1'"),
        ("AccountOpened", "stream_id", "account:c-2", "is not 'account:c-1'"),
        ("AccountOpened", "data.customer_id", _DELETE, "customer_id"),
        ("AccountOpened", "data.customer_id", "c:1", "customer_id must be"),
        ("AccountOpened", "data.customer_id", "c" * 65, "customer_id must be"),
        ("AccountOpened", "data.customer_id", 7, "customer_id must be"),
        ("AccountOpened", "event_id", "e" * 65, "longer than 64"),
        ("FundsDeposited", "version", 1, "starts with AccountOpened"),
        ("FundsDeposited", "data.amount_cents", 0, "at least 1"),
        ("FundsDeposited", "data.amount_cents", -5, "non-negative integer"),
        ("FundsDeposited", "data.amount_cents", 50.0, "non-negative integer"),
        ("FundsDeposited", "data.amount_cents", True, "non-negative integer"),
        ("FundsDeposited", "data.amount_cents", "5000", "non-negative integer"),
        ("FundsDeposited", "data.balance_cents", _DELETE, "balance_cents"),
        ("FundsDeposited", "data.balance_cents", -1, "non-negative integer"),
        ("FundsDeposited", "data.deposit_id", 12, "deposit_id must be"),
        ("FundsDeposited", "data.deposit_id", "", "deposit_id must be"),
        ("FundsDeposited", "data.deposit_id", "d" * 65, "deposit_id must be"),
        ("AccountDebited", "data.order_id", _DELETE, "order_id"),
        ("AccountDebited", "data.order_id", "", "order_id must be"),
        ("AccountDebited", "data.amount_cents", -1, "non-negative integer"),
        ("AccountDebited", "data.balance_cents", -1, "non-negative integer"),
        ("AccountDebited", "version", 1, "starts with AccountOpened"),
        ("AccountCredited", "data.order_id", None, "order_id must be"),
        ("AccountCredited", "data.amount_cents", None, "non-negative integer"),
        ("AccountCredited", "data.balance_cents", 1.5, "non-negative integer"),
        ("AccountCredited", "data", [], "must be an object"),
    ],
)
def test_malformed_account_events_are_unprojectable(
    event_type: str, path: str, value: Any, message: str
) -> None:
    raw = _with(VALID[event_type], path, value)
    with pytest.raises(UnprojectableEvent, match=message):
        parse_message(json.dumps(raw).encode())


def test_the_command_side_encoding_parses_to_the_same_events() -> None:
    """The read side builds on the contract, not on command_service; this checks they agree."""
    events = [
        account.AccountOpened("c-1"),
        account.FundsDeposited("c-1", 5000, 5000, "dep-1"),
        account.AccountDebited("c-1", "o-1", 1999, 3001),
        account.AccountCredited("c-1", "o-1", 1999, 5000),
    ]
    for version, event in enumerate(events, start=1):
        event_type, schema_version, data = encode(event)
        envelope = EventEnvelope(
            f"evt-{version}", event_type, account.account_stream("c-1"), version, 40 + version,
            T0, schema_version, data, {"correlation_id": "corr-1"},
        )  # fmt: skip
        assert envelope.to_dict() == VALID[event_type]
