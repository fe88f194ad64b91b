"""Deny by default: every route of both apps declares a policy, the policies are the documented
contract, and an app with a route lacking one refuses to start (checked in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask, Response, jsonify

from command_service.http.app import create_app as create_command_app
from query_service.http.app import create_app as create_query_app
from shared.contract.principal import ADMIN
from shared.http.auth import MissingPolicy, install_auth, policy_of, public, routes_without_policy
from shared.http.errors import register_problem_handlers
from shared.infra.auth_setup import build_verifier
from shared.infra.config import Settings
from tests.security.policies import (
    COMMAND_POLICIES,
    PUBLIC,
    QUERY_POLICIES,
    Contract,
    RoutePolicy,
)
from tests.support.auth import bearer

IMPLIED_METHODS = {"HEAD", "OPTIONS"}  # Flask adds them to every GET route


def dev_settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "DATA_DIR": str(tmp_path),
            "AUTH_MODE": "dev",
            "READ_MODEL_URL": f"sqlite:///{tmp_path / 'read_model.db'}",
        }
    )


@pytest.fixture(params=["command", "query"])
def service_app(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Flask, Contract]:
    if request.param == "command":
        return create_command_app(dev_settings(tmp_path)), COMMAND_POLICIES
    return create_query_app(dev_settings(tmp_path)), QUERY_POLICIES


def declared_policies(app: Flask) -> dict[tuple[str, str], RoutePolicy | None]:
    """(method, rule) -> what the route's view declares (None: nothing)."""
    found: dict[tuple[str, str], RoutePolicy | None] = {}
    for rule in app.url_map.iter_rules():
        policy = policy_of(app.view_functions.get(rule.endpoint))
        declared = None if policy is None else PUBLIC if policy.public else policy.scopes
        for method in sorted((rule.methods or set()) - IMPLIED_METHODS):
            found[(method, rule.rule)] = declared
    return found


def test_every_route_of_both_apps_has_a_policy(service_app: tuple[Flask, Contract]) -> None:
    app, _ = service_app
    assert routes_without_policy(app) == []
    assert None not in declared_policies(app).values()


def test_every_route_has_the_documented_policy(service_app: tuple[Flask, Contract]) -> None:
    app, contract = service_app
    # Both ways: a new route needs its line in the contract, a removed one loses it.
    assert declared_policies(app) == contract


def small_app() -> Flask:
    app = Flask(__name__, static_folder=None)
    register_problem_handlers(app)

    @app.get("/open")
    @public
    def open_route() -> Response:
        return jsonify(ok=True)

    return app


def test_an_app_with_a_route_without_a_policy_refuses_to_start(tmp_path: Path) -> None:
    app = small_app()

    @app.get("/forgotten")
    def forgotten() -> Response:
        return jsonify(secret=True)

    verifier = build_verifier(dev_settings(tmp_path), "127.0.0.1")
    with pytest.raises(MissingPolicy, match="/forgotten"):
        install_auth(app, verifier)


def test_a_route_added_after_start_up_is_closed_even_to_admin(tmp_path: Path) -> None:
    app = small_app()
    install_auth(app, build_verifier(dev_settings(tmp_path), "127.0.0.1"))

    @app.get("/late")
    def late() -> Response:
        return jsonify(secret=True)

    client = app.test_client()
    assert client.get("/open").status_code == 200
    response = client.get("/late", headers=bearer(tmp_path, scopes=[ADMIN]))
    assert response.status_code == 403
    assert b"secret" not in response.get_data()
