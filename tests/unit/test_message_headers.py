"""The relay's Kafka headers: CloudEvents binary mode plus the auth context extension."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from command_service.outbox.message import message_headers
from shared.contract.envelope import EventEnvelope


def envelope(metadata: dict[str, Any]) -> EventEnvelope:
    moment = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    return EventEnvelope("e-1", "OrderPlaced", "o-1", 1, 7, moment, 2, {"n": 1}, metadata)


def auth_headers(metadata: dict[str, Any]) -> dict[str, bytes]:
    headers = dict(message_headers(envelope(metadata), "urn:test"))
    return {name: value for name, value in headers.items() if name.startswith("ce_auth")}


# As commands store the verified token's principal in every event's metadata.
CUSTOMER = {"sub": "user-7", "iss": "urn:iss", "customer_id": "c-7", "jti": "j"}
GATEWAY = {"sub": "gateway", "iss": "urn:iss", "client_id": "gateway"}


def test_a_customers_event_names_an_app_user() -> None:
    headers = auth_headers({"principal": CUSTOMER})
    assert headers == {"ce_authtype": b"app_user", "ce_authid": b"user-7"}


def test_a_token_without_a_customer_is_a_service_account() -> None:
    headers = auth_headers({"principal": GATEWAY})
    assert headers == {"ce_authtype": b"service_account", "ce_authid": b"gateway"}


@pytest.mark.parametrize(
    "metadata",
    [
        {},  # written before authentication
        {"principal": None},
        {"principal": "someone"},
        {"principal": {"iss": "urn:iss"}},
        {"principal": {"sub": ""}},
        {"principal": {"sub": 42, "customer_id": "c-1"}},
    ],
)
def test_an_event_without_a_readable_principal_is_unknown_without_an_authid(
    metadata: dict[str, Any],
) -> None:
    assert auth_headers(metadata) == {"ce_authtype": b"unknown"}


def test_the_other_headers_are_unchanged() -> None:
    headers = dict(message_headers(envelope({"correlation_id": "corr"}), "urn:test"))
    assert headers["ce_id"] == b"e-1" and headers["ce_subject"] == b"o-1"
    assert headers["correlation_id"] == b"corr"
    assert headers["ce_authtype"] == b"unknown"


STORED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_the_stored_traceparent_is_sent_as_ce_traceparent() -> None:
    headers = dict(message_headers(envelope({"traceparent": STORED}), "urn:test"))
    assert headers["ce_traceparent"] == STORED.encode()


def test_a_publish_spans_traceparent_replaces_the_stored_one() -> None:
    own = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01"
    headers = dict(message_headers(envelope({"traceparent": STORED}), "urn:test", own))
    assert headers["ce_traceparent"] == own.encode()


@pytest.mark.parametrize("metadata", [{}, {"traceparent": ""}, {"traceparent": 7}])
def test_an_event_stored_without_a_traceparent_has_no_ce_traceparent(
    metadata: dict[str, Any],
) -> None:
    assert "ce_traceparent" not in dict(message_headers(envelope(metadata), "urn:test"))
