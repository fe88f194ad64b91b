"""query-rebuild: the read model rebuilt from a real HTTP event feed equals the live projection,
replaces the old rows in one transaction, and leaves tracking the projector can continue from.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import Engine

from query_service.projector.command_api import CommandApiClient
from query_service.projector.lag import kafka_end_offsets
from query_service.read_model.order_writer import load_positions
from query_service.read_model.views import ReadViews
from query_service.rebuild import RebuildFailed, main, rebuild_read_model
from shared.contract.envelope import EventEnvelope
from shared.infra.progress import ProgressBar
from tests.integration.query_support import (
    OrderEventLog,
    ProjectorThread,
    command_api_stand_in,
    new_read_model,
    produce,
    project_directly,
    query_settings,
    sample_log,
    view_rows,
    wait_consumed,
)


def grow(log: OrderEventLog) -> list[EventEnvelope]:
    """Events after the rebuild: new orders, new versions of existing orders and accounts."""
    before = len(log.envelopes)
    log.place("o-new-1", "c-0", [("p-0", 2, 500)])
    log.pay("o-000")
    log.cancel("o-001", "late")  # paid from c-1's account: refunded
    log.pay("o-new-1")
    log.deposit("c-1", 700, deposit_id="dep-late")
    return log.envelopes[before:]


@pytest.mark.kafka
def test_rebuild_equals_the_live_projection_and_the_projector_continues_from_it(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = sample_log(orders=40)
    live = new_read_model(f"sqlite:///{tmp_path / 'live.db'}")
    settings = query_settings(str(live.url), kafka_bootstrap, kafka_topic)
    sent = produce(kafka_bootstrap, kafka_topic, log.envelopes)
    with ProjectorThread(settings, live):
        wait_consumed(live, kafka_topic, sent)

    rebuilt = new_read_model(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    end_offsets = kafka_end_offsets(settings, 5)
    progress_out = io.StringIO()
    with command_api_stand_in(log) as api:
        source = CommandApiClient(api.url)
        progress = ProgressBar(source.head_position(), "rebuild", progress_out)
        report = rebuild_read_model(rebuilt, source, kafka_topic, end_offsets, 7, progress)
        progress.close()

    rebuilt_rows = view_rows(rebuilt)
    assert rebuilt_rows == view_rows(live)
    assert len(rebuilt_rows["accounts"]) == 2 and len(rebuilt_rows["account_statement"]) > 20
    assert (report.events, report.applied, report.parked) == (len(log.envelopes), sent, 0)
    with rebuilt.connect() as conn:
        assert load_positions(conn, kafka_topic) == end_offsets
    assert f"{sent}/{sent} events" in progress_out.getvalue()

    new = grow(log)
    sent += produce(kafka_bootstrap, kafka_topic, new)
    rebuilt_settings = settings.replace(kafka_group_id=settings.kafka_group_id + "-rebuilt")
    with ProjectorThread(settings, live), ProjectorThread(rebuilt_settings, rebuilt) as after:
        wait_consumed(live, kafka_topic, sent)
        wait_consumed(rebuilt, kafka_topic, sent)
    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, log.envelopes)
    assert view_rows(rebuilt) == view_rows(live) == view_rows(reference)
    # It started at the stored end offsets: only the new events were read.
    assert after.projector.stats.applied + after.projector.stats.duplicates == len(new)


@pytest.mark.kafka
def test_without_kafka_positions_the_projector_rereads_the_topic_and_skips_by_version(
    kafka_bootstrap: str, kafka_topic: str, tmp_path: Path
) -> None:
    log = sample_log(orders=20)
    rebuilt = new_read_model(f"sqlite:///{tmp_path / 'rebuilt.db'}")
    with command_api_stand_in(log) as api:
        rebuild_read_model(rebuilt, CommandApiClient(api.url), kafka_topic, None)
    with rebuilt.connect() as conn:
        assert load_positions(conn, kafka_topic) == {}
    new = grow(log)
    sent = produce(kafka_bootstrap, kafka_topic, log.envelopes)

    settings = query_settings(str(rebuilt.url), kafka_bootstrap, kafka_topic)
    with ProjectorThread(settings, rebuilt) as running:
        wait_consumed(rebuilt, kafka_topic, sent)

    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, log.envelopes)
    assert view_rows(rebuilt) == view_rows(reference)
    stats = running.projector.stats
    assert (stats.applied, stats.duplicates) == (len(new), sent - len(new))


@pytest.fixture
def target(read_model_engine: Engine) -> Engine:
    """A new read model on each backend."""
    return read_model_engine


def test_rebuild_replaces_the_old_rows_or_keeps_them_all_if_the_feed_fails(
    target: Engine, tmp_path: Path
) -> None:
    old_log = OrderEventLog()
    old_log.place("o-stale", "c-9", [("p-9", 1, 100)])
    project_directly(target, old_log.envelopes)
    old_rows = view_rows(target)
    log = sample_log(orders=15)

    with command_api_stand_in(log) as api:
        api.fail_after_position = 10
        with pytest.raises(RebuildFailed):
            rebuild_read_model(
                target, CommandApiClient(api.url), "t", {0: 5}, 4, retry_delays_s=(0.01,)
            )
        assert view_rows(target) == old_rows

        api.fail_after_position = None
        rebuild_read_model(target, CommandApiClient(api.url), "t", {0: 5, 1: 0}, page_size=4)

    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, log.envelopes)
    assert view_rows(target) == view_rows(reference)
    with target.connect() as conn:
        assert load_positions(conn, "t") == {0: 5, 1: 0}


def test_query_rebuild_command_parks_what_it_cannot_apply_and_prints_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = sample_log(orders=10)
    last = log.envelopes[-1]
    log.envelopes.append(
        EventEnvelope(
            "evt-odd", "OrderTeleported", "o-000", 9, last.position + 1,
            last.occurred_at, 1, {"order_id": "o-000"},
        )
    )  # fmt: skip
    # An event id used twice: only the database notices, and the rebuild redoes its pass.
    clash = log.place("o-clash", "c-0", [("p-0", 1, 100)])
    first_placed = next(e for e in log.envelopes if e.type == "OrderPlaced")
    log.envelopes[-1] = replace(clash, event_id=first_placed.event_id)
    url = f"sqlite:///{tmp_path / 'read.db'}"
    with command_api_stand_in(log) as api:
        monkeypatch.setenv("READ_MODEL_URL", url)
        monkeypatch.setenv("COMMAND_API_URL", api.url)
        monkeypatch.setenv("LOG_LEVEL", "CRITICAL")
        exit_code = main(["--no-kafka", "--page-size", "6"])

    assert exit_code == 0
    err = capsys.readouterr().err
    total = len(log.envelopes)
    assert f"rebuild [{'#' * 30}] 100% {total}/{total} events" in err
    assert f"rebuilt the read model from {total} events" in err
    assert f"{total - 2} applied, 2 parked" in err
    engine = new_read_model(url)
    assert ReadViews(engine).parked_count() == 2
    reference = new_read_model(f"sqlite:///{tmp_path / 'reference.db'}")
    project_directly(reference, log.envelopes[:-2])
    assert view_rows(engine) == view_rows(reference)
