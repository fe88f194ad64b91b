"""The API contract (issue 5): each service serves a valid OpenAPI 3.1 document that lists every
route, and schemathesis, run against the real gunicorn processes, finds no 5xx and no response
(status, content type, headers, body) that disagrees with the document.

schemathesis runs every check (`--checks all`): a request the document calls valid must be
accepted, one it calls invalid refused; schemathesis.toml beside this file lists the few
statuses the documents declare as depending on server state.

The four processes run as `make run` runs them, on the suite's Kafka broker, with a few orders
and an account placed first so reads find something; each document's path-parameter examples
(o-1001, c-42, p-7) name that data.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from openapi_spec_validator import validate

from command_service.http.app import create_app as create_command_app
from query_service.http.app import create_app as create_query_app
from shared.http.errors import PROBLEM_CONTENT_TYPE
from shared.http.openapi import HTTP_SERVER_ERRORS
from shared.infra.config import Settings
from tests.support.auth import bearer
from tests.support.order_system import OrderSystem
from tests.support.processes import BIN_DIR, ServiceRunner

# Every check, those that judge whether the API should have accepted or refused a request
# included: each rule a service enforces on a request alone is in its document. The statuses
# that depend on server state instead are in CONFIG (positive_data_acceptance).
CHECKS = "all"
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 50  # per operation in the fuzzing phase; the coverage phase adds its own cases
# Fixed, so a failure reproduces; set API_CONTRACT_SEED to explore other inputs.
SEED = int(os.environ.get("API_CONTRACT_SEED", "20261127"))


# Flask answers these on every route by itself; they are not operations of the API.
IMPLICIT_METHODS = frozenset({"HEAD", "OPTIONS"})
# Routes that are not the API: the documents themselves and Prometheus metrics. (The apps have
# no static route: one would have to be documented, with its policy, like any other.)
UNDOCUMENTED_ENDPOINTS = frozenset(
    {"api_docs.openapi_json", "api_docs.docs_page", "api_docs.docs_asset"}
    | {"asyncapi.asyncapi_json"}  # the topic's AsyncAPI document, not an HTTP operation
)
UNDOCUMENTED_PATHS = frozenset({"/metrics"})
# The documented operations anyone may call without a token; every other one needs a scope.
PUBLIC_OPERATIONS = frozenset({("/healthz", "get"), ("/readyz", "get")})


# --- the documents, in process -------------------------------------------------------------


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, lower-case method) of every API route: /orders/<id> -> /orders/{id}."""
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint in UNDOCUMENTED_ENDPOINTS or rule.rule in UNDOCUMENTED_PATHS:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routed.update((path, method.lower()) for method in (rule.methods or set()))
    return {(path, method) for path, method in routed if method.upper() not in IMPLICIT_METHODS}


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(path, method) of every operation in an OpenAPI document."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(path, m) for path, item in document["paths"].items() for m in item if m in methods}


def _apps(tmp_path: Path) -> dict[str, Flask]:
    settings = Settings.from_env(
        {"DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING", "AUTH_MODE": "dev"}
    )
    return {"command": create_command_app(settings), "query": create_query_app(settings)}


@pytest.mark.parametrize("service", ["command", "query"])
def test_document_is_valid_openapi_and_lists_every_route(tmp_path: Path, service: str) -> None:
    app = _apps(tmp_path)[service]
    client = app.test_client()
    response = client.get("/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    validate(document)  # raises with the offending part if it is not valid OpenAPI
    assert document["openapi"].startswith("3.1")

    routed, documented = routed_operations(app), documented_operations(document)
    assert routed - documented == set(), "routes missing from the document"
    assert documented - routed == set(), "documented operations no route serves"

    # Each operation says whether it needs a token, and which scopes would do.
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    for path, method in documented:
        operation = document["paths"][path][method]
        where = f"{method.upper()} {path}"
        if (path, method) in PUBLIC_OPERATIONS:
            assert operation["security"] == [], where
            assert {"401", "403"}.isdisjoint(operation["responses"]), where
        else:
            [requirement] = operation["security"]
            assert list(requirement) == ["bearerAuth"] and requirement["bearerAuth"], where
            assert {"401", "403"} <= set(operation["responses"]), where


@pytest.mark.parametrize("service", ["command", "query"])
def test_docs_page_loads_the_document(tmp_path: Path, service: str) -> None:
    response = _apps(tmp_path)[service].test_client().get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "swagger-ui" in page and "://" not in page  # nothing from another host
    client = _apps(tmp_path)[service].test_client()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "docs.js", "LICENSE"):
        served = client.get(f"/docs/static/{asset}")
        assert served.status_code == 200, asset
        served.close()
    assert client.get("/docs/static/../api_docs.py").status_code == 404


def test_every_error_response_is_problem_json(tmp_path: Path) -> None:
    """Except the two gunicorn answers itself, before the application sees the request."""
    server_errors = {f"#/components/responses/{name}" for name in HTTP_SERVER_ERRORS}
    for app in _apps(tmp_path).values():
        document = app.test_client().get("/openapi.json").get_json()
        for path, item in document["paths"].items():
            for method, operation in item.items():
                for status, response in operation["responses"].items():
                    where = f"{method.upper()} {path} {status}"
                    if int(status) < 400:
                        assert list(response["content"]) == ["application/json"], where
                    elif "$ref" in response:
                        assert response["$ref"] in server_errors, where
                    else:
                        assert list(response["content"]) == [PROBLEM_CONTENT_TYPE], where
                        assert "X-Correlation-ID" in response["headers"], where


def test_a_rejected_impossible_id_still_carries_the_correlation_id(tmp_path: Path) -> None:
    """Found by schemathesis: the query API refuses such ids before its request hooks run."""
    client = _apps(tmp_path)["query"].test_client()
    given = client.get("/orders/no,commas/history", headers={"X-Correlation-ID": "trace-1"})
    assert given.status_code == 404
    assert given.headers["X-Correlation-ID"] == "trace-1"
    generated = client.get("/products/no,commas/sales")
    assert generated.status_code == 404
    assert generated.headers.get("X-Correlation-ID")


def test_a_log_position_past_64_bits_is_a_bad_parameter_not_a_crash(tmp_path: Path) -> None:
    """Found by schemathesis: ?after=2**65 reached SQLite and failed there with a 500."""
    client = _apps(tmp_path)["command"].test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = bearer(tmp_path)["Authorization"]
    response = client.get(f"/events?after={2**65}")
    assert response.status_code == 400
    assert response.get_json()["errors"] == {
        "after": [f"Must be an integer between 0 and {2**63 - 1}."]
    }
    assert client.get(f"/events?after={2**63 - 1}").get_json()["events"] == []


# --- schemathesis against the running services -----------------------------------------------


@pytest.fixture(scope="module")
def running_system(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str
) -> Iterator[OrderSystem]:
    """Command API, relay, query API and projector, with the documents' example data."""
    runner = ServiceRunner(tmp_path_factory.mktemp("api-contract"))
    system = OrderSystem(runner, kafka_bootstrap, f"contract-{uuid.uuid4().hex[:12]}")
    try:
        with pytest.MonkeyPatch.context() as env:
            # min_version waits at most this long when schemathesis asks for a future version.
            env.setenv("READ_YOUR_WRITES_MAX_WAIT_MS", "50")
            system.start()
        _seed(system.command_api.base_url, system.admin_headers)
        system.wait_converged(timeout=60)
        yield system
    finally:
        runner.stop_all()
        runner.print_tails()


def _seed(base_url: str, headers: dict[str, str]) -> None:
    """An account with every kind of statement line, orders in several states, two customers."""

    def send(method: str, path: str, body: dict[str, Any] | None = None) -> None:
        response = requests.request(
            method, f"{base_url}{path}", json=body, headers=headers, timeout=10
        )
        assert response.status_code < 300, (path, response.status_code, response.text)

    def place(order_id: str, customer_id: str) -> None:
        lines = [
            {"product_id": "p-7", "quantity": 2, "unit_price": "12.50"},
            {"product_id": "p-9", "quantity": 1, "unit_price": "5.00"},
        ]
        send("POST", "/orders", {"order_id": order_id, "customer_id": customer_id, "lines": lines})

    send("POST", "/accounts", {"customer_id": "c-42", "initial_deposit": "100.00"})
    send("POST", "/accounts/c-42/deposits", {"amount": "25.00", "deposit_id": "dep-1"})
    place("o-1001", "c-42")
    send("POST", "/orders/o-1001/status", {"status": "PAID", "expected_version": 1})
    place("o-1002", "c-42")
    send("POST", "/orders/o-1002/status", {"status": "PAID"})
    send("DELETE", "/orders/o-1002", {"reason": "changed my mind"})
    place("o-1003", "c-7")


def _schemathesis(base_url: str, workdir: Path, headers: dict[str, str]) -> tuple[int, str]:
    """Run the schemathesis CLI against a service, sending `headers` (an admin token) with
    every request; its exit code and report.

    The CLI rather than the pytest plugin: the plugin's fixture-loaded schemas do not work with
    pytest 9. One worker: Python 3.11's parser is not thread-safe, which Hypothesis trips over.
    """
    script = BIN_DIR / "schemathesis"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "schemathesis.cli"]
    argv = [
        *command,
        f"--config-file={CONFIG}",
        "run",
        f"{base_url}/openapi.json",
        f"--checks={CHECKS}",
        "--phases=examples,coverage,fuzzing",
        f"--max-examples={MAX_EXAMPLES}",
        f"--seed={SEED}",
        "--workers=1",
        "--generation-database=none",
        "--request-timeout=10",
        "--no-color",
        *(f"--header={name}: {value}" for name, value in headers.items()),
    ]
    # Its working files (crash reproductions) go to the run's directory, not the checkout.
    done = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.kafka
@pytest.mark.parametrize("service", ["command", "query"])
def test_service_conforms_to_its_document(running_system: OrderSystem, service: str) -> None:
    api = running_system.command_api if service == "command" else running_system.query_api
    document = requests.get(f"{api.base_url}/openapi.json", timeout=10).json()
    operations = len(documented_operations(document))

    exit_code, report = _schemathesis(
        api.base_url, running_system.runner.workdir, running_system.admin_headers
    )

    print(report)  # pytest shows the whole report of a failing test
    # Each failure comes with the request as a curl command, to replay it.
    failures = report[report.find(" FAILURES ") :] if " FAILURES " in report else report
    assert exit_code == 0, f"schemathesis found problems:\n{failures[-20_000:]}"
    summary = report[report.rfind(" SUMMARY ") :]
    assert f"Tested: {operations}" in summary, f"not every operation was tested:\n{summary}"
