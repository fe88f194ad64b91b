"""A small stdlib HTTP client for the command service's read endpoints (gap repair, rebuild).

Unreachable, slow or failing (5xx) servers raise CommandApiUnavailable: callers retry later.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

DEFAULT_TIMEOUT_S = 5.0


class CommandApiUnavailable(Exception):
    """The command API did not give a usable answer; try again later."""


@dataclass(frozen=True)
class EventsPage:
    """One page of the whole log: raw event dicts, the position to continue after, more?"""

    events: list[dict[str, Any]]
    next_after: int
    has_more: bool


class CommandApiClient:
    """GET /orders/{id}/events, GET /accounts/{id}/events, GET /events and GET /events/head,
    with the bearer token `token` gives (scope events:read).
    """

    def __init__(
        self,
        base_url: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        token: Callable[[], str | None] = lambda: None,
        context_headers: Callable[[], Mapping[str, str]] = dict,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        # Asked before every request: the token file may be replaced while we run.
        self.token = token
        # Asked before every request too: the trace and correlation ids of what it is for.
        self.context_headers = context_headers

    def order_events(self, order_id: str) -> list[dict[str, Any]]:
        """The order's stored events in version order ([] if the log has no such order)."""
        return self._stream_events("orders", order_id)

    def account_events(self, customer_id: str) -> list[dict[str, Any]]:
        """The customer's account events in version order ([] if the log has no such account)."""
        return self._stream_events("accounts", customer_id)

    def events_page(self, after: int, limit: int) -> EventsPage:
        """Up to `limit` events of the log after a position."""
        query = urllib.parse.urlencode({"after": after, "limit": limit})
        body = self._get_json(f"/events?{query}")
        try:
            page = EventsPage(list(body["events"]), int(body["next_after"]), bool(body["has_more"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CommandApiUnavailable(f"GET /events answered an unexpected body: {exc}") from exc
        return page

    def head_position(self) -> int | None:
        """The newest log position (for progress), or None if the service does not say."""
        try:
            body = self._get_json("/events/head")
        except CommandApiUnavailable:
            return None
        value = body.get("head_position") if isinstance(body, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _stream_events(self, resource: str, identifier: str) -> list[dict[str, Any]]:
        body = self._get_json(f"/{resource}/{urllib.parse.quote(identifier, safe='')}/events")
        if body is None:
            return []
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list):
            raise CommandApiUnavailable(
                f"GET /{resource}/{{id}}/events answered without an events list"
            )
        return sorted(events, key=lambda raw: raw.get("version", 0) if isinstance(raw, dict) else 0)

    def _get_json(self, path: str) -> Any:
        """GET and parse JSON; None for 404."""
        headers = {**self.context_headers(), "Accept": "application/json"}
        token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base_url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise CommandApiUnavailable(f"GET {path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise CommandApiUnavailable(f"GET {path}: {exc}") from exc
        try:
            return orjson.loads(payload)  # a rebuild decodes every event of the log here
        except orjson.JSONDecodeError as exc:
            raise CommandApiUnavailable(f"GET {path}: body is not JSON") from exc
