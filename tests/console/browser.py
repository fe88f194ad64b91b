"""Headless Chromium for the browser tests (Debian's chromium and chromium-driver, driven by
selenium offline): skipped, with the reason, where they are not installed."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDE, NARROW = 1280, 390


def chromium_driver() -> Iterator[Any]:
    """A headless Chromium with its performance and console logs on; quit afterwards."""
    # Selenium Manager would try to download a browser: there is no network for that.
    os.environ["SE_OFFLINE"] = "true"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        pytest.skip(f"selenium is not installed: {exc}")
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            pytest.skip(f"{path} is missing: apt-get install chromium chromium-driver (.ci/run)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WIDE},900",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    except Exception as exc:  # a broken install: say so rather than fail every test
        pytest.skip(f"headless Chromium does not start here: {exc}")
    try:
        yield driver
    finally:
        driver.quit()


def submit(driver: Any, button: Any, timeout: float = 20) -> None:
    """Click a form's button and wait for the page it leads to: a click returns before the
    browser has navigated, so reading the page right after it may still read the old one."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    old_page = driver.find_element(By.TAG_NAME, "html")
    button.click()

    def navigated() -> bool:
        try:
            old_page.tag_name  # noqa: B018 - raises once the old document is gone
        except StaleElementReferenceException:
            return bool(driver.execute_script("return document.readyState") == "complete")
        return False

    deadline = time.monotonic() + timeout
    while not navigated():
        if time.monotonic() > deadline:
            raise AssertionError(f"the page did not change within {timeout} s of the click")
        time.sleep(0.05)


def requested_hosts(driver: Any) -> set[str]:
    """Every host:port the page asked for since the last call (the performance log)."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")):
                hosts.add(urlsplit(url).netloc)
    return hosts


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver: Any, name: str, tmp_dir: Path) -> None:
    """Into the test's tmp dir; also into docs/console/ when UPDATE_CONSOLE_SCREENSHOTS=1."""
    driver.save_screenshot(str(tmp_dir / f"{name}.png"))
    if os.environ.get("UPDATE_CONSOLE_SCREENSHOTS") == "1":
        docs = Path(__file__).resolve().parents[2] / "docs" / "console"
        docs.mkdir(exist_ok=True)
        driver.save_screenshot(str(docs / f"{name}.png"))
