"""nosniff on every response and no-store on all but the public documents, errors included."""

from __future__ import annotations

import pytest
from flask import Flask, Response, jsonify
from flask.testing import FlaskClient

from shared.http.errors import Problem, register_problem_handlers
from shared.http.security_headers import CACHEABLE_PATHS, install_security_headers


@pytest.fixture
def client() -> FlaskClient:
    app = Flask(__name__, static_folder=None)
    register_problem_handlers(app)
    install_security_headers(app)

    @app.get("/balance")
    def balance() -> Response:
        return jsonify(balance_cents=100)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/refused")
    def refused() -> Response:
        raise Problem(401, "unauthorized", "Unauthorized", "Send a token.")

    @app.get("/broken")
    def broken() -> Response:
        raise RuntimeError("a bug")

    return app.test_client()


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/balance", 200),
        ("GET", "/refused", 401),
        ("GET", "/nowhere", 404),
        ("POST", "/balance", 405),
        ("GET", "/broken", 500),
    ],
)
def test_every_answer_is_nosniff_and_no_store(
    client: FlaskClient, method: str, path: str, status: int
) -> None:
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"


def test_the_public_documents_may_be_cached(client: FlaskClient) -> None:
    assert {"/openapi.json", "/docs", "/healthz"} == CACHEABLE_PATHS
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "Cache-Control" not in response.headers
