"""bench/report.py's table of the issue's targets: every goal shows, measured or not."""

from __future__ import annotations

from typing import Any

from bench.report import ISSUE_TARGETS, issue_targets_section

MACHINE = {"date": "2026-12-01T21:00:00Z", "loadavg_at_start": [0.5, 0.4, 0.3]}


def result(results: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"machine": MACHINE, "params": {"quick": True}, "results": results, **extra}


def rows(page: str) -> list[str]:
    return [line for line in page.splitlines() if line.startswith("| ") and "goal" not in line]


def test_every_target_of_the_issue_shows_when_nothing_was_measured() -> None:
    lines = rows(issue_targets_section({}))

    assert len(lines) == len(ISSUE_TARGETS)
    assert all("**NOT MEASURED**" in line for line in lines)


def test_a_target_is_met_or_missed_by_the_issues_goal() -> None:
    concurrent = result(
        {
            "2x4": {
                "ours": {"appends_per_s": 3000, "mean_batch_size": 3.5},
                "raw_sqlite3": {"appends_per_s": 1000},
                "ratios": {"ours_vs_raw_sqlite3": 3.0},
            }
        }
    )
    relay = result({"ratio_relay_vs_raw": 0.6})  # the relay bench's own goal is 0.5x

    lines = rows(issue_targets_section({"concurrent_append": concurrent, "relay": relay}))

    by_target = {line.split(" | ")[0].removeprefix("| "): line for line in lines}
    concurrent_row = by_target["concurrent appenders (2 processes x 4 threads) with group commit"]
    assert "3.0x (3,000 vs 1,000 appends/s; mean batch 3.5)" in concurrent_row
    assert "| met |" in concurrent_row
    assert "quick, 2026-12-01T21:00:00Z, load 0.5" in concurrent_row
    assert "**MISSED**" in by_target["relay vs raw producer"]


def test_freshness_needs_both_rates_and_a_result_of_another_shape_is_not_measured() -> None:
    freshness = result(
        {
            "runs": [
                {"target_rps": 200, "held": True, "freshness_api_ms": {"p99": 40.0}},
            ]
        }
    )
    projector = result({"rebuild_http": {}})  # no "projector" block: a shape we don't know

    lines = rows(issue_targets_section({"freshness": freshness, "projector": projector}))

    freshness_row = next(line for line in lines if line.startswith("| freshness"))
    assert "200/s: p99 40.0 ms; 500/s: not run" in freshness_row
    assert "**MISSED**" in freshness_row
    projector_row = next(line for line in lines if line.startswith("| projector from Kafka"))
    assert "**NOT MEASURED**" in projector_row
