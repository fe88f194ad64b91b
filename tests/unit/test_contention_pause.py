"""The pause between attempts of a command that lost a race: random, growing, capped."""

from __future__ import annotations

import pytest

from command_service.application import contention


def test_pauses_grow_with_the_attempt_and_stop_at_50_ms(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(contention.time, "sleep", slept.append)
    monkeypatch.setattr(contention.random, "uniform", lambda low, high: high)
    for attempt in range(10):
        contention.pause_before_retry(attempt)
    assert slept[:4] == [0.001, 0.002, 0.004, 0.008]
    assert slept == sorted(slept) and max(slept) == 0.05


def test_a_pause_is_drawn_between_zero_and_its_ceiling(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[float, float]] = []
    monkeypatch.setattr(contention.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(
        contention.random, "uniform", lambda low, high: drawn.append((low, high)) or low
    )
    contention.pause_before_retry(2)
    assert drawn == [(0, 0.004)]
