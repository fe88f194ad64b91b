"""The console in real headless Chromium against the running system: sign in, every page shows
what was just written, a parked event is retried, no request leaves the console's host, no
console error, a screenshot per page (at 1280 px, and the layout holds at 390 px)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.console.browser import (
    NARROW,
    WIDE,
    chromium_driver,
    console_errors,
    requested_hosts,
    screenshot,
    submit,
)
from tests.console.conftest import CUSTOMER, PAYLOAD_PRODUCT, ConsoleSystem
from tests.support.processes import wait_until


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    yield from chromium_driver()


@pytest.fixture(scope="module")
def signed_in(driver: Any, console_system: ConsoleSystem) -> Any:
    from selenium.webdriver.common.by import By

    driver.get(f"{console_system.url}/")
    assert driver.title == "Sign in · orders console"
    driver.find_element(By.ID, "token").send_keys(console_system.admin_token)
    submit(driver, driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]"))
    assert driver.title == "Overview · orders console"
    return driver


def _visit(driver: Any, console_system: ConsoleSystem, path: str, name: str, tmp: Path) -> str:
    """Open a page, check it stayed on the console's host without errors, screenshot it."""
    from selenium.webdriver.common.by import By

    driver.get(console_system.url + path)
    assert driver.find_element(By.TAG_NAME, "h1").text, path
    assert driver.title.endswith("· orders console"), path
    assert requested_hosts(driver) <= {urlsplit(console_system.url).netloc}, path
    assert console_errors(driver) == [], path
    for control in driver.find_elements(
        By.CSS_SELECTOR, "input:not([type=hidden]), select, textarea"
    ):
        control_id = control.get_attribute("id")
        assert control_id and driver.find_elements(By.CSS_SELECTOR, f"label[for='{control_id}']")
    screenshot(driver, name, tmp)
    text: str = driver.find_element(By.TAG_NAME, "main").text
    return text


def test_every_page_shows_what_was_written(
    signed_in: Any,
    console_system: ConsoleSystem,
    kafka_bootstrap: str,
    console_topic: str,
    tmp_path: Path,
) -> None:
    driver, order = signed_in, console_system.order_id
    wait_until(
        lambda: order in _visit(driver, console_system, "/search?q=" + order, "search", tmp_path),
        timeout=30,
        message="the audit index finds the order",
    )
    overview = _visit(driver, console_system, "/", "overview", tmp_path)
    assert "Projector and Kafka" in overview and "Lease owner" in overview
    assert order in _visit(driver, console_system, "/orders", "orders", tmp_path)
    timeline = _visit(driver, console_system, f"/streams/{order}?compare=1", "stream", tmp_path)
    assert timeline.index("v1 OrderPlaced") < timeline.index("v2 OrderStatusChanged")
    assert "agrees with the log" in timeline
    _check_kafka_messages(driver, console_system, kafka_bootstrap, console_topic, tmp_path)
    found = _visit(driver, console_system, f"/search?q={PAYLOAD_PRODUCT}", "search", tmp_path)
    assert order in found
    log = _visit(driver, console_system, f"/events?stream={order}", "events", tmp_path)
    assert "OrderPlaced" in log
    customer = _visit(driver, console_system, f"/customers/{CUSTOMER}", "customer", tmp_path)
    assert order in customer and "Running balance" in customer


def _check_kafka_messages(
    driver: Any, console_system: ConsoleSystem, bootstrap: str, topic: str, tmp: Path
) -> None:
    """Each event of the order shows where its message really is (read back from the topic),
    and links to the event log filtered to that event."""
    from selenium.webdriver.common.by import By

    on_topic = _messages_on_topic(bootstrap, topic)
    order = console_system.order_id
    events = requests.get(
        f"{console_system.system.command_api.base_url}/orders/{order}/events",
        headers=console_system.system.admin_headers,
        timeout=10,
    ).json()["events"]
    links = driver.find_elements(By.CSS_SELECTOR, "ol.timeline a.kafka-message")
    assert len(links) == len(events) == 2
    for event, link in zip(events, links, strict=True):
        partition, offset = on_topic[event["event_id"]]
        assert link.text == f"partition {partition} · offset {offset}"
    href = links[0].get_attribute("href")
    log = _visit(
        driver, console_system, urlsplit(href).path + "?" + urlsplit(href).query, "event", tmp
    )
    assert events[0]["event_id"] in log and "OrderPlaced" in log
    assert events[1]["event_id"] not in log


def _messages_on_topic(bootstrap: str, topic: str) -> dict[str, tuple[int, int]]:
    """event id (the ce_id header) -> (partition, offset) of every message on the topic."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        found: dict[str, tuple[int, int]] = {}
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    ce_id = dict(record.headers).get("ce_id")
                    if ce_id is not None:
                        found.setdefault(ce_id.decode(), (record.partition, record.offset))
        return found
    finally:
        consumer.close()


def test_a_parked_event_is_retried(
    signed_in: Any, console_system: ConsoleSystem, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    driver, ghost = signed_in, console_system.ghost_order
    system = console_system.system
    # The parked v2 had no v1 anywhere; once the log has v1, a retry applies it.
    placed = requests.post(
        f"{system.command_api.base_url}/orders",
        json={
            "order_id": ghost,
            "customer_id": CUSTOMER,
            "lines": [{"product_id": "p-1", "quantity": 1, "unit_price": "5.00"}],
        },
        headers=system.admin_headers,
        timeout=10,
    )
    assert placed.status_code == 201, placed.text
    requests.get(
        f"{system.query_api.base_url}/orders/{ghost}?min_version=1",
        headers=system.admin_headers,
        timeout=10,
    )
    page = _visit(driver, console_system, "/parked", "parked", tmp_path)
    assert ghost in page and "version gap not repaired" in page
    card = next(
        article
        for article in driver.find_elements(By.CSS_SELECTOR, "article.parked")
        if ghost in article.text
    )
    card.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys("v1 is in the log now")
    submit(driver, card.find_element(By.CSS_SELECTOR, "button[value=retry]"))
    after = driver.find_element(By.TAG_NAME, "main").text
    assert "applied" in after and "v1 is in the log now" in after
    assert console_errors(driver) == []
    # The retried cancel is in the read model, not in the log: the stream page says they differ.
    differs = _visit(driver, console_system, f"/streams/{ghost}", "stream-differs", tmp_path)
    assert "the read model differs from the log" in differs


def test_the_layout_holds_at_390_px(
    signed_in: Any, console_system: ConsoleSystem, tmp_path: Path
) -> None:
    driver = signed_in
    driver.set_window_size(NARROW, 900)
    try:
        for path, name in (("/", "overview-390"), ("/orders", "orders-390")):
            _visit(driver, console_system, path, name, tmp_path)
            width = driver.execute_script("return document.documentElement.scrollWidth")
            assert width <= NARROW + 1, f"{path} scrolls sideways at {NARROW} px: {width}"
    finally:
        driver.set_window_size(WIDE, 900)


@pytest.mark.parametrize("service", ["command", "query"])
def test_api_docs_render_with_no_network(
    driver: Any, console_system: ConsoleSystem, service: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    api = (
        console_system.system.command_api
        if service == "command"
        else console_system.system.query_api
    )
    requested_hosts(driver)  # forget what earlier pages asked for
    driver.get(f"{api.base_url}/docs")
    wait_until(
        lambda: driver.find_elements(By.CSS_SELECTOR, ".opblock"),
        timeout=20,
        message="Swagger UI lists the operations",
    )
    assert requested_hosts(driver) <= {urlsplit(api.base_url).netloc}
    assert console_errors(driver) == []
    screenshot(driver, f"docs-{service}", tmp_path)
