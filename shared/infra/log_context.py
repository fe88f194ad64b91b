"""The correlation id and trace id in scope, added to every JSON log line written meanwhile.

A request (both APIs) and a message being applied (the projector) bind them for as long as
they run; the formatter in structured_logging.py reads them. Context variables keep threads
(gunicorn's gthread workers) from seeing each other's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

# One variable holding both: binding a scope is one set and one reset.
_scope: ContextVar[tuple[str | None, str | None] | None] = ContextVar("log_scope", default=None)

ScopeToken = Token[tuple[str | None, str | None] | None]


def bind_log_scope(correlation_id: str | None, trace_id: str | None) -> ScopeToken:
    """Put these ids on every line logged in this context until `unbind_log_scope`."""
    return _scope.set((correlation_id, trace_id))


def unbind_log_scope(token: ScopeToken) -> None:
    """Restore the scope that was in force before the matching bind."""
    _scope.reset(token)


@contextmanager
def log_scope(correlation_id: str | None, trace_id: str | None) -> Iterator[None]:
    """`bind_log_scope` for the duration of a with block."""
    token = _scope.set((correlation_id, trace_id))
    try:
        yield
    finally:
        _scope.reset(token)


def scope_fields() -> dict[str, str]:
    """The ids in scope, as log fields (none outside any scope)."""
    scope = _scope.get()
    if scope is None:
        return {}
    correlation_id, trace_id = scope
    fields = {}
    if correlation_id:
        fields["correlation_id"] = correlation_id
    if trace_id:
        fields["trace_id"] = trace_id
    return fields
