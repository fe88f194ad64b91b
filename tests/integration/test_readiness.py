"""Readiness and 503s when the event log refuses writes, on a real SQLite file (no mocks):
another process holding the write lock, and a full disk."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

import shared.infra.db
from command_service.http.app import create_app
from shared.infra.config import Settings
from tests.integration.test_command_api import order_body
from tests.support.auth import bearer
from tests.support.faults import SmallDisk, small_disk_or_skip, sqlite_path

PROBLEM_TYPE = "urn:event-sourced-orders:problem:"


@pytest.fixture
def impatient_app(monkeypatch: pytest.MonkeyPatch, command_settings: Settings) -> Flask:
    """The command app, waiting 0.2 s instead of 30 s for a write lock someone else holds."""
    monkeypatch.setattr(shared.infra.db, "SQLITE_BUSY_TIMEOUT_MS", 200)
    return create_app(command_settings)


@contextmanager
def write_lock_held(database: Path) -> Iterator[None]:
    """Another process's transaction holding SQLite's write lock, as a stuck writer would."""
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def authorized_client(app: Flask, data_dir: Path) -> FlaskClient:
    """A test client of `app` sending an admin token the app accepts."""
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(data_dir)["Authorization"]
    return client


def place(client: FlaskClient, order_id: str) -> int:
    return client.post("/orders", json=order_body(order_id)).status_code


def test_a_refused_write_is_a_logged_503_and_unready_until_writes_work(
    impatient_app: Flask, command_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    client = authorized_client(impatient_app, command_settings.data_dir)
    database = sqlite_path(command_settings.event_store_url)
    assert place(client, "o-1") == 201
    with write_lock_held(database):
        # Trusted until a write is refused: a probe that wrote every time would queue for
        # the write lock with the commands.
        assert client.get("/readyz").status_code == 200
        with caplog.at_level(logging.WARNING, logger="command_service.problems"):
            refused = client.post("/orders", json=order_body("o-2"))
        assert refused.status_code == 503
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert refused.headers["Retry-After"] == "1"
        assert refused.get_json() == {
            "type": PROBLEM_TYPE + "event-store-unavailable",
            "title": "Event store unavailable",
            "status": 503,
            "detail": "The event log cannot accept writes right now; nothing was recorded. "
            "Retry shortly.",
            "instance": "/orders",
        }
        [record] = [r for r in caplog.records if r.name == "command_service.problems"]
        assert record.levelno == logging.WARNING
        assert record.getMessage() == "event store unavailable: database is locked"
        assert vars(record)["cause"] == "OperationalError('database is locked')"
        assert vars(record)["path"] == "/orders"

        # /readyz is public: it says what is wrong, while the cause goes only to the log.
        with caplog.at_level(logging.WARNING, logger="command_service.app"):
            unready = client.get("/readyz")
        assert unready.status_code == 503
        assert unready.get_json()["type"] == PROBLEM_TYPE + "not-ready"
        assert unready.get_json()["detail"] == "Event log refuses writes."
        assert "database is locked" not in unready.get_data(as_text=True)
        [not_ready] = [r for r in caplog.records if r.getMessage().startswith("not ready")]
        assert not_ready.getMessage() == "not ready: event log refuses writes"
        assert vars(not_ready)["cause"] == "database is locked"
    assert client.get("/readyz").get_json() == {"status": "ready"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/events/head").get_json() == {"head_position": 1}
    assert place(client, "o-2") == 201


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    """A 4 MiB tmpfs for the event log; skips where mounting is not allowed."""
    with small_disk_or_skip(tmp_path, "disk", size_mb=4) as disk:
        yield disk


def test_readiness_follows_a_full_disk(
    tmp_path: Path, small_disk: SmallDisk, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env(
        {
            "DATA_DIR": str(tmp_path / "data"),
            "EVENT_STORE_URL": f"sqlite:///{small_disk.path / 'events.db'}",
            "AUTH_MODE": "dev",
        }
    )
    client = authorized_client(create_app(settings), settings.data_dir)
    assert place(client, "o-1") == 201
    small_disk.fill()
    try:
        # The WAL's last block may still take a commit or two before one needs a new block.
        answers = [place(client, f"o-{n}") for n in range(2, 12)]
        assert 503 in answers, answers
        with caplog.at_level(logging.WARNING, logger="command_service.app"):
            unready = client.get("/readyz")
        assert unready.status_code == 503
        assert unready.get_json()["detail"] == "Event log refuses writes."
        assert "disk is full" not in unready.get_data(as_text=True)
        [not_ready] = [r for r in caplog.records if r.getMessage().startswith("not ready")]
        assert vars(not_ready)["cause"] == "database or disk is full"
        assert client.get("/orders/o-1").status_code == 200  # reads need no space
    finally:
        small_disk.empty()
    assert client.get("/readyz").status_code == 200
    assert place(client, "o-99") == 201


def service_ready(client: FlaskClient) -> float:
    """The service_ready gauge of one scrape of /metrics."""
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    [family] = [
        f
        for f in text_string_to_metric_families(scrape.get_data(as_text=True))
        if f.name == "service_ready"
    ]
    [sample] = family.samples
    return float(sample.value)


def test_service_ready_in_metrics_says_what_readyz_says(
    impatient_app: Flask, command_settings: Settings
) -> None:
    client = authorized_client(impatient_app, command_settings.data_dir)
    database = sqlite_path(command_settings.event_store_url)
    assert service_ready(client) == 1
    with write_lock_held(database):
        assert place(client, "o-1") == 503
        assert service_ready(client) == 0
        assert client.get("/readyz").status_code == 503
    assert service_ready(client) == 1
    assert client.get("/readyz").status_code == 200
