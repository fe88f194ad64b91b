"""service_ready: the /readyz check, run at each scrape, as a 1 or a 0."""

from __future__ import annotations

from shared.http.errors import Problem
from shared.http.readiness_metric import ReadinessGauge


def ready_value(gauge: ReadinessGauge) -> float:
    [family] = list(gauge.collect())
    assert family.name == "service_ready"
    [sample] = family.samples
    return sample.value


def test_a_passing_check_is_1_and_a_not_ready_problem_is_0() -> None:
    answers: list[Problem | None] = [None, Problem(503, "not-ready", "Not ready", "DB."), None]

    def check() -> None:
        answer = answers.pop(0)
        if answer is not None:
            raise answer

    gauge = ReadinessGauge(check)
    assert [ready_value(gauge) for _ in range(3)] == [1, 0, 1]
