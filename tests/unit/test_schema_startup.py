"""Creating the schema at start: database errors are waited out; a stop request ends the wait."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.exc import OperationalError

from shared.infra.backoff import Backoff
from shared.infra.schema_startup import create_schema_when_reachable


def unreachable_for(attempts: int) -> tuple[list[int], Callable[[], None]]:
    calls: list[int] = []

    def create() -> None:
        calls.append(len(calls))
        if len(calls) <= attempts:
            raise OperationalError("CREATE TABLE", {}, Exception("connection refused"))

    return calls, create


def test_retries_database_errors_with_growing_pauses_until_the_schema_is_created() -> None:
    calls, create = unreachable_for(3)
    pauses: list[float] = []
    assert create_schema_when_reachable(create, lambda: False, pauses.append)
    assert len(calls) == 4
    assert len(pauses) == 3
    assert pauses[0] < pauses[2] <= 5.0


def test_a_stop_request_ends_the_wait_without_creating_anything() -> None:
    calls, create = unreachable_for(1000)
    pauses: list[float] = []
    assert not create_schema_when_reachable(create, lambda: len(pauses) >= 2, pauses.append)
    assert len(calls) == 2


def test_an_error_that_is_not_the_database_s_is_a_bug_and_propagates() -> None:
    def create() -> None:
        raise TypeError("a bug")

    with pytest.raises(TypeError):
        create_schema_when_reachable(create, lambda: False, lambda _s: None)


def test_backoff_doubles_with_jitter_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(initial=0.1, cap=0.4)
    delays = [backoff.next_delay() for _ in range(5)]
    assert 0.05 <= delays[0] <= 0.1
    assert all(0.2 <= d <= 0.4 for d in delays[3:])
    backoff.reset()
    assert backoff.delay_s == 0.1
