"""Fixtures for the integration tests: the command app in-process (Flask test client), and the
services as subprocesses on a temp data dir (see tests/support)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from command_service.adapters.event_store import EventStore
from command_service.http.app import create_app
from devtools.local_postgres import find_pg_bin
from query_service.read_model.tables import metadata
from shared.infra.config import Settings
from shared.infra.db import create_database_engine
from tests.integration.query_api_support import LOG, filled_read_model
from tests.integration.query_support import OrderEventLog, new_read_model
from tests.support.auth import bearer
from tests.support.backends import BACKENDS
from tests.support.postgres import throwaway_postgres
from tests.support.processes import HttpService, ServiceRunner


@pytest.fixture
def command_settings(tmp_path: Path) -> Settings:
    """The in-process command app's settings: the test's own data dir, an 8 KiB body limit."""
    # Small, so that the 413 test need not send the default 64 KiB.
    return Settings.from_env(
        {"DATA_DIR": str(tmp_path), "COMMAND_MAX_BODY_BYTES": "8192", "AUTH_MODE": "dev"}
    )


@pytest.fixture
def app(command_settings: Settings) -> Flask:
    """The command app in-process, on a real SQLite event log in the test's data dir."""
    return create_app(command_settings)


@pytest.fixture
def client(app: Flask, command_settings: Settings) -> FlaskClient:
    """A test client of `app`, sending an admin token unless a request sets its own."""
    test_client = app.test_client()
    header = bearer(command_settings.data_dir)["Authorization"]
    test_client.environ_base["HTTP_AUTHORIZATION"] = header
    return test_client


@pytest.fixture
def store(app: Flask) -> EventStore:
    """The event store `app` writes to."""
    store: EventStore = app.extensions["event_store"]
    return store


@pytest.fixture
def services(tmp_path: Path) -> Iterator[ServiceRunner]:
    """Start services with it; all are stopped at teardown and their output tails printed."""
    # Captured output is only shown for failing tests, which is when the tails matter.
    with ServiceRunner(tmp_path) as runner:
        yield runner


@pytest.fixture
def command_api(services: ServiceRunner) -> HttpService:
    """The command API (gunicorn, real HTTP) on a free port, writing to the run's event store."""
    return services.command_api()


@pytest.fixture
def event_log(services: ServiceRunner) -> Iterator[EventStore]:
    """The run's event store, opened in-process on the same SQLite file the services use."""
    engine = create_database_engine(services.event_store_url)
    store = EventStore(engine)
    store.create_schema()
    yield store
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database for suites that also run on it; skips when no server is here.

    One server for the session; each suite drops the tables it created.
    """
    pytest.importorskip("psycopg")
    given = os.environ.get("EVENT_STORE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    bin_dir = find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    with throwaway_postgres(bin_dir) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each database backend in turn: a test using it runs once per backend (BACKENDS)."""
    name: str = request.param
    return name


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database of `backend`: a new SQLite file, or the session's PostgreSQL database (shared,
    so a suite drops what it created; the test is skipped where there is no PostgreSQL)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'database.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def read_model_engine(backend: str, database_url: str) -> Iterator[Engine]:
    """An empty read model on each backend in turn; its tables are dropped from PostgreSQL."""
    engine = new_read_model(database_url)
    yield engine
    if backend == "postgresql":
        metadata.drop_all(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def read_model_log() -> OrderEventLog:
    """The log `filled` projects: the query API tests' 45 orders, unless a module overrides it."""
    return LOG


@pytest.fixture(scope="module", params=BACKENDS)
def filled(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    read_model_log: OrderEventLog,
) -> Iterator[Engine]:
    """read_model_log projected into a read model on each backend in turn, once per module."""
    yield from filled_read_model(request, tmp_path_factory, read_model_log)
