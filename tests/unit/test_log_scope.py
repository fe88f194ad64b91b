"""Log lines carry the correlation and trace ids in scope, unless they name their own."""

from __future__ import annotations

import json
import logging
import threading

from shared.infra.log_context import LogIds, bind_log_scope, log_scope, unbind_log_scope
from shared.infra.structured_logging import JsonFormatter


def line(**extra: object) -> dict[str, object]:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    record.__dict__.update(extra)
    parsed: dict[str, object] = json.loads(JsonFormatter().format(record))
    return parsed


def test_a_line_outside_any_scope_has_neither_id() -> None:
    entry = line()
    assert "correlation_id" not in entry and "trace_id" not in entry


def test_a_line_in_scope_has_both_until_the_scope_ends() -> None:
    token = bind_log_scope(LogIds("corr-1", "trace-1"))
    try:
        entry = line()
    finally:
        unbind_log_scope(token)
    assert (entry["correlation_id"], entry["trace_id"]) == ("corr-1", "trace-1")
    assert "trace_id" not in line()


def test_scopes_nest_and_an_id_given_to_the_logger_wins() -> None:
    with log_scope("outer", "t-outer"):
        with log_scope("inner", None):
            inner = line()
        outer = line(correlation_id="explicit")
    assert inner["correlation_id"] == "inner" and "trace_id" not in inner
    assert (outer["correlation_id"], outer["trace_id"]) == ("explicit", "t-outer")


def test_another_thread_does_not_see_this_threads_scope() -> None:
    seen: list[dict[str, object]] = []
    with log_scope("mine", "t-mine"):
        worker = threading.Thread(target=lambda: seen.append(line()))
        worker.start()
        worker.join()
    assert "correlation_id" not in seen[0]
