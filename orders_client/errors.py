"""What the client raises: a common base carrying the problem (RFC 9457 problem+json) an error
answer was, one family per status, and the transport's own failures. Each problem type has its
own subclass of a family (orders_client.problem_types).

Catch a family (`NotFound`, `Conflict`) or one type (`InsufficientFunds`); every problem's
extra members (`current_version`, `errors`, ...) are in `extensions`, the common ones also as
typed properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_TYPE_BASE = "urn:event-sourced-orders:problem:"


class OrdersClientError(Exception):
    """Base of everything the client raises."""


class ConnectionFailed(OrdersClientError):
    """No answer from the service (refused, dropped, timed out), every attempt."""

    def __init__(self, method: str, url: str, attempts: int, cause: Exception) -> None:
        super().__init__(f"{method} {url}: no answer after {attempts} attempt(s): {cause}")
        self.method = method
        self.url = url
        self.attempts = attempts


class ProjectionBehind(OrdersClientError):
    """A `min_version` read: the read model had not reached that version within the service's
    wait (READ_YOUR_WRITES_MAX_WAIT_MS); read again later."""

    def __init__(self, resource: str, min_version: int, seen_version: int | None) -> None:
        seen = "not there yet" if seen_version is None else f"at version {seen_version}"
        super().__init__(f"{resource} is {seen} in the read model; wanted {min_version}")
        self.resource = resource
        self.min_version = min_version
        self.seen_version = seen_version


class ProblemError(OrdersClientError):
    """An error answer: status, type (a URN), title, detail, and the problem's extra members."""

    def __init__(
        self,
        status: int,
        type: str,
        title: str,
        detail: str,
        extensions: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.extensions: dict[str, Any] = dict(extensions or {})
        self.headers: dict[str, str] = dict(headers or {})

    @property
    def slug(self) -> str:
        """The type without its URN prefix, e.g. "version-conflict"."""
        return self.type.removeprefix(PROBLEM_TYPE_BASE)

    @property
    def instance(self) -> str | None:
        """The path of the request the problem answered."""
        return self._str("instance")

    @property
    def errors(self) -> dict[str, list[str]]:
        """Field name -> messages, for problems that name fields (else empty)."""
        errors = self.extensions.get("errors")
        return dict(errors) if isinstance(errors, dict) else {}

    def _int(self, name: str) -> int | None:
        value = self.extensions.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def _str(self, name: str) -> str | None:
        value = self.extensions.get(name)
        return value if isinstance(value, str) else None


# --- families by status ---------------------------------------------------------------------


class BadRequest(ProblemError):
    """400: a malformed request, query parameter or header (see `errors`)."""


class Unauthorized(ProblemError):
    """401: no bearer token, or one the service refused."""


class Forbidden(ProblemError):
    """403: the token lacks a scope this needs (`required_scopes`)."""

    @property
    def required_scopes(self) -> list[str]:
        scopes = self.extensions.get("required_scopes")
        return [str(s) for s in scopes] if isinstance(scopes, list) else []


class NotFound(ProblemError):
    """404: no such resource (or not one this token may see)."""


class Conflict(ProblemError):
    """409: the request contradicts the stream's current state; nothing was recorded."""

    @property
    def current_version(self) -> int | None:
        return self._int("current_version")

    @property
    def current_status(self) -> str | None:
        return self._str("current_status")


class Unprocessable(ProblemError):
    """422: the request is well-formed but refused (invalid fields, a reused key)."""


class TooManyRequests(ProblemError):
    """429: the service is full of waiting reads; retry after `Retry-After`."""


class ServerError(ProblemError):
    """5xx other than 503: the service failed."""


class ServiceUnavailable(ServerError):
    """503: the service cannot answer right now (nothing was recorded), every attempt."""
