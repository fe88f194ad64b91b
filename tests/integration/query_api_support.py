"""Shared data and fixtures of the query API tests: a 45-order log projected into SQLite and
(when its server is installed) PostgreSQL, and test clients over it that send dev tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from query_service.http.app import create_app
from query_service.read_model.tables import metadata
from shared.contract.principal import READ_ALL
from shared.infra.config import Settings
from tests.integration.query_support import (
    OrderEventLog,
    new_read_model,
    project_directly,
    query_settings,
)
from tests.support.auth import token

ORDERS = 45


def build_log() -> OrderEventLog:
    """45 orders of 3 customers; every third is placed in the same microsecond as the one before."""
    log = OrderEventLog()
    for n in range(ORDERS):
        order_id = f"o-{n:03d}"
        at = log.clock if n % 3 == 2 else None
        lines = [(f"p-{n % 4}", 1 + n % 3, 100 * (1 + n % 5)), ("p-gift", 1, 99)]
        log.place(order_id, f"c-{n % 3}", lines, at=at)
        if n % 4 >= 1:
            log.change(order_id, "PAID", at=log.clock)
        if n % 4 == 2:
            log.change(order_id, "SHIPPED", at=log.clock)
        if n % 4 == 3:
            log.cancel(order_id, "customer asked", at=log.clock)
    return log


LOG = build_log()
PLACED = {e.stream_id: e for e in LOG.envelopes if e.type == "OrderPlaced"}
FINAL = {e.stream_id: e for e in LOG.envelopes}  # last event per order
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NEWEST_FIRST = sorted(PLACED, key=lambda oid: (PLACED[oid].occurred_at, oid), reverse=True)


def cursor_at(order_id: str) -> str:
    """A hand-made order cursor naming this order of the log: <microseconds>~<order id>."""
    micros = (PLACED[order_id].occurred_at - EPOCH) // timedelta(microseconds=1)
    return f"{micros}~{order_id}"


def status_of(order_id: str) -> str:
    last = FINAL[order_id]
    return "CANCELLED" if last.type == "OrderCancelled" else last.data.get("to_status", "PLACED")


def filled_read_model(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    log: OrderEventLog = LOG,
) -> Iterator[Engine]:
    """Body of a module fixture parametrized over sqlite/postgresql: the log, projected."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('read-model') / 'read.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = new_read_model(url)
    project_directly(engine, log.envelopes)
    yield engine
    if request.param == "postgresql":
        metadata.drop_all(engine)
    engine.dispose()


def authed_settings(read_model_url: str, data_dir: Path, **changes: Any) -> Settings:
    """query_settings for an app that accepts the dev tokens of `data_dir` (AUTH_MODE=dev)."""
    return query_settings(read_model_url, data_dir=data_dir, auth_mode="dev", **changes)


def client_with_token(
    app: Flask,
    sub: str = "test-reader",
    scopes: Iterable[str] = (READ_ALL,),
    customer_id: str | None = None,
) -> FlaskClient:
    """A test client of `app` sending this token, unless a request sets its own Authorization."""
    settings: Settings = app.config["SETTINGS"]
    client = app.test_client()
    bearer = token(settings.data_dir, sub, scopes, customer_id)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {bearer}"
    return client


def query_client(settings: Settings) -> FlaskClient:
    """A read:all test client of a new query app on `settings` (see authed_settings)."""
    return client_with_token(create_app(settings))


def api_client(engine: Engine, data_dir: Path) -> FlaskClient:
    """A read:all test client of the query API over the engine's database."""
    url = engine.url.render_as_string(hide_password=False)
    return query_client(authed_settings(url, data_dir, read_your_writes_max_wait_ms=200))


def get(client: FlaskClient, url: str, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    if status >= 400:
        assert response.mimetype == "application/problem+json"
    return response.get_json()


def walk(client: FlaskClient, url: str) -> list[str]:
    """Follow next_cursor (and check the Link header) to the last page; the order ids."""
    seen: list[str] = []
    while True:
        response = client.get(url)
        assert response.status_code == 200
        body = response.get_json()
        seen += [order["order_id"] for order in body["orders"]]
        if body["next_cursor"] is None:
            assert "Link" not in response.headers
            return seen
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"') and quote(body["next_cursor"]) in link
        url = link[1 : link.index(">")].removeprefix("http://localhost")
