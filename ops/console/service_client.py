"""The console's HTTP client for the two APIs (stdlib urllib): JSON in, JSON or text out."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

TIMEOUT_S = 5.0


class ServiceError(Exception):
    """An API answered with an error (status and its problem body) or not at all (status 0)."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.body = body


class ServiceClient:
    """One API at `base_url`, called with the bearer token `token()` gives."""

    def __init__(self, base_url: str, token: Callable[[], str | None]) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET path?params as JSON; ServiceError for anything but a 2xx."""
        return json.loads(self._call("GET", path, params, None, self.token()))

    def get_text(self, path: str) -> str:
        """GET path as text (Prometheus metrics)."""
        return self._call("GET", path, None, None, self.token())

    def post_json(self, path: str, body: Mapping[str, Any], token: str) -> Any:
        """POST a JSON body with the caller's own token (actions, never the console's)."""
        return json.loads(self._call("POST", path, None, json.dumps(body).encode(), token))

    def _call(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: bytes | None,
        token: str | None,
    ) -> str:
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        url = self.base_url + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, data=body, method=method)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                text: str = response.read().decode()
                return text
        except urllib.error.HTTPError as exc:
            raw = exc.read().decode(errors="replace")
            try:
                problem = json.loads(raw)
            except ValueError:
                problem = None
            detail = problem.get("detail", raw) if isinstance(problem, dict) else raw
            raise ServiceError(exc.code, str(detail)[:500], problem) from None
        except (OSError, ValueError) as exc:
            raise ServiceError(0, f"{self.base_url} did not answer: {exc}") from None
