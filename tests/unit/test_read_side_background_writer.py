"""BackgroundWriter: jobs run in order on one thread; a failure reaches the submitter and
drops what was queued after it."""

from __future__ import annotations

import functools
import threading

import pytest

from query_service.projector.background_writer import BackgroundWriter


def test_jobs_run_in_order_on_another_thread() -> None:
    done: list[tuple[int, str]] = []
    with BackgroundWriter(queued=2) as writer:

        def record(n: int) -> None:
            done.append((n, threading.current_thread().name))

        for n in range(50):
            writer.submit(functools.partial(record, n))
        writer.drain()
        assert [n for n, _ in done] == list(range(50))
        assert {name for _, name in done} == {"read-model-writer"}


def test_a_failed_job_is_raised_to_the_submitter_and_later_jobs_are_dropped() -> None:
    done: list[int] = []
    release = threading.Event()

    def fail() -> None:
        release.wait(5)
        raise ValueError("rejected row")

    with BackgroundWriter(queued=3) as writer:
        writer.submit(fail)
        writer.submit(lambda: done.append(1))
        release.set()
        with pytest.raises(ValueError, match="rejected row"):
            writer.drain()
        with pytest.raises(ValueError):
            writer.submit(lambda: done.append(2))
    assert done == []


def test_leaving_on_an_error_stops_the_thread_without_running_what_is_queued() -> None:
    done: list[int] = []
    gate = threading.Event()
    with pytest.raises(KeyboardInterrupt), BackgroundWriter(queued=2) as writer:
        writer.submit(lambda: gate.wait(5))
        writer.submit(lambda: done.append(1))
        threading.Timer(0.2, gate.set).start()  # the first job ends after the error
        raise KeyboardInterrupt
    assert done == []
    assert not writer._thread.is_alive()
