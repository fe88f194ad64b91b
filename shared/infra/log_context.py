"""The correlation id and trace id in scope, added to every JSON log line written meanwhile.

A request (both APIs) and a message being applied (the projector) bind a scope for as long as
they run; the formatter in structured_logging.py asks it for its fields. A scope may work its
ids out only then (the projector's reads a message's headers only if a line is written), so
binding one costs a context-variable set. Context variables keep threads (gunicorn's gthread
workers) from seeing each other's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Protocol


class LogScope(Protocol):
    """Whatever is being worked on, as log fields."""

    def log_fields(self) -> Mapping[str, str]:
        """`correlation_id` and `trace_id`, those that are known."""
        ...


class LogIds:
    """A scope whose ids are known up front (a request's)."""

    __slots__ = ("_fields",)

    def __init__(self, correlation_id: str | None, trace_id: str | None) -> None:
        fields = {}
        if correlation_id:
            fields["correlation_id"] = correlation_id
        if trace_id:
            fields["trace_id"] = trace_id
        self._fields = fields

    def log_fields(self) -> Mapping[str, str]:
        return self._fields


_scope: ContextVar[LogScope | None] = ContextVar("log_scope", default=None)
_NONE: Mapping[str, str] = {}

ScopeToken = Token[LogScope | None]


def bind_log_scope(scope: LogScope) -> ScopeToken:
    """Put the scope's ids on every line logged in this context until `unbind_log_scope`."""
    return _scope.set(scope)


def unbind_log_scope(token: ScopeToken) -> None:
    """Restore the scope that was in force before the matching bind."""
    _scope.reset(token)


@contextmanager
def log_scope(correlation_id: str | None, trace_id: str | None) -> Iterator[None]:
    """These ids on every line logged in a with block."""
    token = _scope.set(LogIds(correlation_id, trace_id))
    try:
        yield
    finally:
        _scope.reset(token)


@contextmanager
def log_scope_of(scope: LogScope | None) -> Iterator[None]:
    """`scope` on every line logged in a with block; the current one stays if None."""
    if scope is None:
        yield
        return
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def current_log_scope() -> LogScope | None:
    """The scope bound in this context, if any."""
    return _scope.get()


def scope_fields() -> Mapping[str, str]:
    """The ids in scope, as log fields (none outside any scope)."""
    scope = _scope.get()
    return scope.log_fields() if scope is not None else _NONE
