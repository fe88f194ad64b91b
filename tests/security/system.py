"""The command API and the query API as real subprocesses (AUTH_MODE=dev) for security tests.

The read model is filled by `query-rebuild --no-kafka` from the command API's own feed, so
these tests need no broker: the views are exactly what the log projects to.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from shared.contract.principal import ADMIN
from tests.support.auth import token
from tests.support.processes import HttpService, ServiceRunner, console_script

TIMEOUT_S = 30


@dataclass
class SecuritySystem:
    """Both APIs on one work directory: one event store, one dev signing key."""

    runner: ServiceRunner
    command_api: HttpService
    query_api: HttpService

    @property
    def workdir(self) -> Path:
        return self.runner.workdir

    @property
    def read_model_url(self) -> str:
        return read_model_url(self.workdir)

    def token(
        self, sub: str, scopes: Iterable[str], customer_id: str | None = None, ttl_s: int = 3600
    ) -> str:
        """A token these services accept."""
        return token(self.workdir, sub, scopes, customer_id, ttl_s)

    def headers(
        self, sub: str, scopes: Iterable[str], customer_id: str | None = None
    ) -> dict[str, str]:
        """The Authorization header of such a token."""
        return {"Authorization": f"Bearer {self.token(sub, scopes, customer_id)}"}

    @property
    def admin(self) -> dict[str, str]:
        return self.headers("security-admin", [ADMIN])

    def command(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to the command API (requests' keyword arguments)."""
        return requests.request(
            method, self.command_api.base_url + path, timeout=TIMEOUT_S, **kwargs
        )

    def query(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """One request to the query API."""
        return requests.request(method, self.query_api.base_url + path, timeout=TIMEOUT_S, **kwargs)

    def head_position(self) -> int:
        """The event log's head, as an operator reads it (GET /events/head, admin)."""
        response = self.command("GET", "/events/head", headers=self.admin)
        assert response.status_code == 200, response.text
        head: int = response.json()["head_position"]
        return head

    def all_events(self) -> list[dict[str, Any]]:
        """Every event of the log through GET /events (admin), in position order."""
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            response = self.command(
                "GET", "/events", params={"after": after, "limit": 1000}, headers=self.admin
            )
            assert response.status_code == 200, response.text
            page = response.json()
            events += page["events"]
            if not page["has_more"]:
                return events
            after = page["next_after"]

    def rebuild_read_model(self) -> None:
        """Project the whole log into the query API's read model (query-rebuild, no Kafka)."""
        env = self.runner.base_env(**query_env(self.workdir, self.command_api.base_url))
        argv = [*console_script("query-rebuild", "query_service.rebuild"), "--no-kafka"]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def read_model_views(
        self, order_ids: Iterable[str], customer_ids: Iterable[str]
    ) -> dict[str, Any]:
        """What the query API shows an admin of these orders and customers, by path."""
        paths = ["/orders?limit=100", "/products/top"]
        for order_id in order_ids:
            paths += [f"/orders/{order_id}", f"/orders/{order_id}/history"]
        for customer_id in customer_ids:
            paths += [
                f"/customers/{customer_id}",
                f"/accounts/{customer_id}",
                f"/accounts/{customer_id}/statement",
                f"/customers/{customer_id}/orders",
            ]
        views: dict[str, Any] = {}
        for path in paths:
            response = self.query("GET", path, headers=self.admin)
            views[path] = (response.status_code, response.json())
        return views


def read_model_url(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'read_model.db'}"


def query_env(workdir: Path, command_api_url: str) -> dict[str, str]:
    """The query side's settings: its read model, and the command API it rebuilds from."""
    return {"READ_MODEL_URL": read_model_url(workdir), "COMMAND_API_URL": command_api_url}


def start_security_system(runner: ServiceRunner, **env: str) -> SecuritySystem:
    """Start the command API and the query API on `runner`'s work directory; wait for both."""
    command_api = runner.command_api(**env)
    query_api = runner.start_http(
        "query-api",
        "query-api",
        "query_service.server",
        "QUERY_API_HOST",
        "QUERY_API_PORT",
        **query_env(runner.workdir, command_api.base_url),
        **env,
    )
    return SecuritySystem(runner, command_api, query_api)
