"""The system under test for end-to-end and fault tests: command API, relay, query API and
projector, wired as `make run` wires them, on one work directory and one topic.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import select

from command_service.adapters.event_store import EventStore
from devtools.waiting import wait_until
from query_service.read_model.tables import accounts, create_read_model_engine, orders
from shared.contract.envelope import EventEnvelope
from shared.infra.db import create_database_engine
from tests.support.processes import HttpService, ServiceProcess, ServiceRunner, console_script
from tests.support.reference_model import ACCOUNT_STREAM_PREFIX, ExpectedViews


class OrderSystem:
    """Command API, relay, query API and projector on one work directory and one topic."""

    def __init__(
        self,
        runner: ServiceRunner,
        bootstrap: str,
        topic: str,
        projector_args: Sequence[str] = (),
        projector_env: Mapping[str, str] | None = None,
        relay_env: Mapping[str, str] | None = None,
        query_api_env: Mapping[str, str] | None = None,
        group_id: str | None = None,
    ) -> None:
        self.runner = runner
        # Extra command-line options of every projector (e.g. a shorter session timeout).
        self.projector_args = tuple(projector_args)
        # Extra environment of every projector (e.g. LOG_LEVEL=DEBUG for its per-event lines).
        self.projector_env = dict(projector_env or {})
        # Extra environment of the relay and the query API (e.g. each one's own Kafka user).
        self.relay_env = dict(relay_env or {})
        self.query_api_env = dict(query_api_env or {})
        self.bootstrap = bootstrap
        # Where the relay reaches Kafka (a fault proxy in tests/faults/test_network_faults.py).
        self.relay_bootstrap = bootstrap
        self.topic = topic
        # A fresh group per system, unless the broker's ACLs grant only a given one.
        self.group_id = group_id or f"e2e-{uuid.uuid4().hex[:8]}"
        self._command_api: HttpService | None = None
        self._relay: ServiceProcess | None = None
        self._query_api: HttpService | None = None
        self._projector: ServiceProcess | None = None

    @property
    def admin_headers(self) -> dict[str, str]:
        """An admin bearer token the services of this system accept."""
        return self.runner.admin_headers

    @property
    def read_model_url(self) -> str:
        return f"sqlite:///{self.runner.workdir / 'read_model.db'}"

    @property
    def command_api(self) -> HttpService:
        assert self._command_api is not None, "start() first"
        return self._command_api

    @property
    def relay(self) -> ServiceProcess:
        assert self._relay is not None, "start() first"
        return self._relay

    @property
    def query_api(self) -> HttpService:
        assert self._query_api is not None, "start() first"
        return self._query_api

    @property
    def projector(self) -> ServiceProcess:
        assert self._projector is not None, "start() first"
        return self._projector

    def query_env(self) -> dict[str, str]:
        """What the query side's processes are given (the rebuild command too)."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_TOPIC": self.topic,
            "KAFKA_GROUP_ID": self.group_id,
            "READ_MODEL_URL": self.read_model_url,
            "COMMAND_API_URL": self.command_api.base_url,
        }

    def start(self) -> OrderSystem:
        """Start all four and wait until both APIs answer."""
        # A short lease so a relay restarted after kill -9 takes over within seconds.
        self._command_api = self.runner.command_api()
        self._relay = self.runner.relay(
            self.relay_bootstrap, self.topic, **{"RELAY_LEASE_SECONDS": "3", **self.relay_env}
        )
        self._query_api = self.runner.start_http(
            "query-api",
            "query-api",
            "query_service.server",
            "QUERY_API_HOST",
            "QUERY_API_PORT",
            **{**self.query_env(), **self.query_api_env},
        )
        self._projector = self.start_projector("projector")
        return self

    def start_projector(self, name: str) -> ServiceProcess:
        """Start a projector in the system's consumer group (also a second one, beside it)."""
        argv = console_script("query-projector", "query_service.projector_main")
        env = {**self.query_env(), **self.projector_env}
        return self.runner.start(name, argv + list(self.projector_args), **env)

    def restart(self, service: ServiceProcess) -> None:
        """Start a stopped or killed service again with the same settings (and port)."""
        service.start()
        if isinstance(service, HttpService):
            service.wait_healthy(60)

    def event_log(self) -> list[EventEnvelope]:
        """Every event in the log, in position order, read from the SQLite file directly."""
        engine = create_database_engine(self.runner.event_store_url)
        try:
            store = EventStore(engine)
            envelopes: list[EventEnvelope] = []
            while page := store.read_all(envelopes[-1].position if envelopes else 0, 1000):
                envelopes += page
            return envelopes
        finally:
            engine.dispose()

    def projected_versions(self) -> dict[str, int]:
        """Stream id (order id, or account:<customer>) -> version in the read model."""
        engine = create_read_model_engine(self.read_model_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(select(orders.c.order_id, orders.c.version))
                versions = {row.order_id: row.version for row in rows}
                rows = conn.execute(select(accounts.c.customer_id, accounts.c.version))
                versions |= {ACCOUNT_STREAM_PREFIX + row.customer_id: row.version for row in rows}
                return versions
        finally:
            engine.dispose()

    def wait_converged(self, timeout: float = 120) -> ExpectedViews:
        """Wait until the read model holds every order and account at its last version."""
        expected = ExpectedViews.fold(self.event_log())
        want = {order_id: order.version for order_id, order in expected.orders.items()}
        want |= {ACCOUNT_STREAM_PREFIX + c: a.version for c, a in expected.accounts.items()}

        def caught_up() -> bool:
            return self.projected_versions() == want

        def behind() -> str:
            got = self.projected_versions()
            wrong = {k: (got.get(k), v) for k, v in want.items() if got.get(k) != v}
            return (
                f"{len(wrong)} of {len(want)} streams not projected as (read model, log): "
                f"{dict(list(wrong.items())[:5])}; extra: {set(got) - set(want)}"
            )

        wait_until(caught_up, timeout, behind, interval=0.25)
        return expected
