"""The console app (Flask test client) against the real running services: deny by default,
sign-in, CSRF, every page's data, parked retry with the user's own admin token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from ops.console.app import create_app
from ops.console.config import ConsoleSettings
from shared.http.auth import policy_of
from tests.console.conftest import PAYLOAD_PRODUCT, ConsoleSystem, csrf_of, signed_in_session

PUBLIC_ENDPOINTS = {
    "console.sign_in_page",
    "console.sign_in_submit",
    "console.sign_out_submit",
    "console.healthz",
    "console.static_file",
}


@pytest.fixture(scope="module")
def app(console_system: ConsoleSystem, tmp_path_factory: pytest.TempPathFactory) -> Flask:
    workdir = Path(console_system.system.runner.workdir)
    own = tmp_path_factory.mktemp("console-app")
    settings = ConsoleSettings.from_env(
        {
            "DATA_DIR": str(workdir),
            "AUTH_MODE": "dev",
            "COMMAND_API_URL": console_system.system.command_api.base_url,
            "QUERY_API_URL": console_system.system.query_api.base_url,
            "CONSOLE_SEARCH_URL": f"sqlite:///{own / 'search.db'}",
            "CONSOLE_SECRET_KEY_FILE": str(own / "secret.key"),
        }
    )
    app = create_app(settings, background=False)
    parts = app.extensions["console"]
    parts.indexer.catch_up()
    parts.sampler.sample()
    return app


def _signed_in(app: Flask, bearer_token: str) -> FlaskClient:
    client = app.test_client()
    csrf = csrf_of(client.get("/sign-in").get_data(as_text=True))
    signed = client.post("/sign-in", data={"token": bearer_token, "csrf_token": csrf})
    assert signed.status_code == 302, signed.get_data(as_text=True)
    return client


def test_every_route_declares_a_policy_and_pages_need_sign_in(app: Flask) -> None:
    for rule in app.url_map.iter_rules():
        policy = policy_of(app.view_functions[rule.endpoint])
        assert policy is not None, rule.rule
        assert policy.public == (rule.endpoint in PUBLIC_ENDPOINTS), rule.rule
    client = app.test_client()
    for path in ("/", "/events", "/search?q=x", "/orders", "/parked", "/streams/o-1"):
        response = client.get(path)
        assert response.status_code == 302 and "/sign-in" in response.headers["Location"], path


def test_sign_in_sets_a_strict_http_only_cookie_and_refuses_bad_tokens(
    app: Flask, console_system: ConsoleSystem
) -> None:
    client = app.test_client()
    csrf = csrf_of(client.get("/sign-in").get_data(as_text=True))
    assert client.post("/sign-in", data={"token": "x", "csrf_token": "wrong"}).status_code == 400
    refused = client.post("/sign-in", data={"token": "not-a-jwt", "csrf_token": csrf})
    assert refused.status_code == 400 and "Token refused" in refused.get_data(as_text=True)
    signed = client.post(
        "/sign-in",
        data={"token": console_system.reader_token, "csrf_token": csrf, "next": "//evil.example"},
    )
    assert signed.headers["Location"] == "/"  # never an open redirect
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    page = client.get("/")
    assert page.status_code == 200
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_pages_show_the_data_written(app: Flask, console_system: ConsoleSystem) -> None:
    client = _signed_in(app, console_system.reader_token)
    order = console_system.order_id
    assert order in client.get("/orders").get_data(as_text=True)
    timeline = client.get(f"/streams/{order}").get_data(as_text=True)
    assert timeline.index("v1 OrderPlaced") < timeline.index("v2 OrderStatusChanged")
    assert "By <code>test-admin</code>" in timeline  # who issued each
    assert "agrees with the log" in timeline
    diff = client.get(f"/streams/{order}?version=2&compare=1").get_data(as_text=True)
    assert "Changes from version 1 to 2" in diff and "PAID" in diff
    for query in (order, PAYLOAD_PRODUCT):
        found = client.get(f"/search?q={query}").get_data(as_text=True)
        assert f"/streams/{order}" in found, query
    log = client.get(f"/events?stream={order}&order=oldest").get_data(as_text=True)
    assert log.index("OrderPlaced") < log.index("OrderStatusChanged")
    customer = client.get("/customers/c-console").get_data(as_text=True)
    assert order in customer and "<polyline" in customer
    overview = client.get("/").get_data(as_text=True)
    assert 'id="log-head"' in overview and "Projector position" in overview


def test_bad_input_is_a_4xx_page_naming_the_field(
    app: Flask, console_system: ConsoleSystem
) -> None:
    client = _signed_in(app, console_system.reader_token)
    for path, field in (
        ("/events?cursor=abc", "cursor"),
        ("/events?since=yesterday", "since"),
        ("/events?order=sideways", "order"),
        ("/orders?status=LOST", "status"),
        ("/streams/o-nothing-here", "o-nothing-here"),
        ("/streams/o-1%3Fas_of_version=1", "o-1?as_of_version=1"),
        (f"/streams/{console_system.order_id}?version=99", "version"),
    ):
        response = client.get(path)
        assert 400 <= response.status_code < 500, path
        assert field in response.get_data(as_text=True), path


def test_parked_retry_needs_the_users_own_admin_token(
    app: Flask, console_system: ConsoleSystem
) -> None:
    reader = _signed_in(app, console_system.reader_token)
    page = reader.get("/parked").get_data(as_text=True)
    assert "not json at all" in page and "Sign in with an admin token" in page
    parked_id = re.search(r'id="p(\d+)"', page)
    assert parked_id is not None
    refused = reader.post(f"/parked/{parked_id.group(1)}/retry", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403
    admin = _signed_in(app, console_system.admin_token)
    page = admin.get("/parked").get_data(as_text=True)
    no_csrf = admin.post(f"/parked/{parked_id.group(1)}/discard", data={})
    assert no_csrf.status_code == 400


def test_the_console_process_serves_its_pages(console_system: ConsoleSystem) -> None:
    session = signed_in_session(console_system.url, console_system.reader_token)
    assert session.get(f"{console_system.url}/orders", timeout=10).status_code == 200
    assert requests.get(f"{console_system.url}/healthz", timeout=5).json() == {"status": "ok"}
