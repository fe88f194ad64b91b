"""The client's resends, for real: a gateway in front of the real command API answers 503 or
drops the connection after forwarding (the command was applied; its answer is lost). A resent
command carries the same Idempotency-Key, so the event log holds it once."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devtools.ports import free_port
from orders_client import (
    Client,
    ConnectionFailed,
    LineItem,
    OrderNotFound,
    Retry,
    ServiceUnavailable,
)
from tests.integration.orders_client.conftest import CUSTOMER_SCOPES
from tests.support.flaky_gateway import flaky_gateway
from tests.support.order_system import OrderSystem

pytestmark = pytest.mark.kafka

LINES = [LineItem("p-retry", 1, 700)]


def through(
    gateway_url: str, make_client: Callable[..., Client], customer_id: str, **options: object
) -> tuple[Client, list[Retry]]:
    """A customer's client whose command URL is the gateway, and the retries it reports."""
    retries: list[Retry] = []
    client = make_client(
        f"sub-{customer_id}",
        CUSTOMER_SCOPES,
        customer_id,
        on_retry=retries.append,
        **options,
    )
    client.command_url = gateway_url
    return client, retries


def placements_of(admin: Client, customer_id: str) -> list[str]:
    """The order ids of every OrderPlaced event of a customer in the whole log."""
    found, after = [], 0
    while True:
        page = admin.events(after=after, limit=1000)
        found += [
            e.stream_id
            for e in page.events
            if e.type == "OrderPlaced" and e.data["customer_id"] == customer_id
        ]
        if not page.has_more:
            return found
        after = page.next_after


def test_an_order_whose_answer_was_lost_is_placed_once(
    system: OrderSystem, admin: Client, make_client: Callable[..., Client]
) -> None:
    with flaky_gateway(system.command_api.base_url) as gateway:
        client, retries = through(gateway.url, make_client, "c-lost")
        gateway.fail_next("drop-after-forward")

        # No order_id: without the key, the resend would be a second order with a new id.
        placed = client.place_order("c-lost", LINES)

    assert placed.replayed, "the resend was answered with the stored first result"
    assert [r.reason.startswith("no answer") for r in retries] == [True]
    keys = gateway.keys_seen()
    assert len(keys) == 2 and keys[0] == keys[1] is not None
    assert placements_of(admin, "c-lost") == [placed.order_id]


def test_a_payment_whose_answer_was_lost_debits_once(
    system: OrderSystem, admin: Client, make_client: Callable[..., Client]
) -> None:
    admin.open_account("c-lost-pay", initial_deposit_cents=1000)
    with flaky_gateway(system.command_api.base_url) as gateway:
        client, retries = through(gateway.url, make_client, "c-lost-pay")
        placed = client.place_order("c-lost-pay", LINES)
        gateway.fail_next("drop-after-forward", "drop-after-forward")

        paid = client.change_status(placed.order_id, "PAID")

    assert paid.replayed and len(retries) == 2
    assert paid.account is not None and paid.account.balance_cents == 300
    assert [e.type for e in admin.order_events(placed.order_id)] == [
        "OrderPlaced",
        "OrderStatusChanged",
    ]
    debits = [e for e in admin.account_events("c-lost-pay") if e.type == "AccountDebited"]
    assert len(debits) == 1
    assert admin.account_state("c-lost-pay").balance_cents == 300


def test_503_is_resent_after_retry_after_with_the_same_key(
    system: OrderSystem, admin: Client, make_client: Callable[..., Client]
) -> None:
    with flaky_gateway(system.command_api.base_url, retry_after="1") as gateway:
        client, retries = through(gateway.url, make_client, "c-503")
        gateway.fail_next("503", "503")

        placed = client.place_order("c-503", LINES)

    assert not placed.replayed  # the 503s never reached the service
    assert [(r.delay_s, r.reason.split()[0]) for r in retries] == [(1.0, "503"), (1.0, "503")]
    keys = gateway.keys_seen()
    assert len(keys) == 3 and len(set(keys)) == 1
    assert placements_of(admin, "c-503") == [placed.order_id]


def test_reads_are_resent_too_and_503_ends_as_service_unavailable(
    system: OrderSystem, make_client: Callable[..., Client]
) -> None:
    with flaky_gateway(system.command_api.base_url, retry_after=None) as gateway:
        client, retries = through(gateway.url, make_client, "c-503-read", retries=2)
        placed = client.place_order("c-503-read", LINES)
        gateway.fail_next("503", "drop-after-forward")
        assert client.order_state(placed.order_id).version == 1
        assert len(retries) == 2

        gateway.fail_next("503", "503", "503")
        with pytest.raises(ServiceUnavailable) as unavailable:
            client.order_state(placed.order_id)
    assert unavailable.value.status == 503
    assert len(retries) == 4  # two more resends, then the third 503 was raised


def test_other_4xx_answers_are_not_resent(
    system: OrderSystem, make_client: Callable[..., Client]
) -> None:
    with flaky_gateway(system.command_api.base_url) as gateway:
        client, retries = through(gateway.url, make_client, "c-404")
        with pytest.raises(OrderNotFound):
            client.cancel_order("o-never-placed")
    assert retries == [] and len(gateway.seen) == 1


def test_without_a_key_a_command_whose_answer_was_lost_is_not_resent(
    system: OrderSystem, admin: Client, make_client: Callable[..., Client]
) -> None:
    with flaky_gateway(system.command_api.base_url) as gateway:
        client, retries = through(gateway.url, make_client, "c-no-key", idempotency_keys=False)
        gateway.fail_next("drop-after-forward")
        with pytest.raises(ConnectionFailed) as lost:
            client.place_order("c-no-key", LINES)
    assert lost.value.attempts == 1 and retries == []
    assert gateway.keys_seen() == [None]
    assert len(placements_of(admin, "c-no-key")) == 1  # applied: the answer was what got lost


def test_a_service_that_is_not_there(make_client: Callable[..., Client]) -> None:
    retries: list[Retry] = []
    client = make_client(retries=3, backoff_s=0.01, on_retry=retries.append)
    client.command_url = f"http://127.0.0.1:{free_port()}"

    with pytest.raises(ConnectionFailed) as refused:
        client.place_order("c-nowhere", LINES)

    assert refused.value.attempts == 4
    assert [r.attempt for r in retries] == [1, 2, 3]
    assert len({r.idempotency_key for r in retries}) == 1
