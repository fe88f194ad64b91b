"""ReadModelChanges on a real SQLite file: waiters wake on another connection's commit."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import Engine, text

from query_service.read_model_changes import ReadModelChanges
from shared.db import create_database_engine


def _engine(tmp_path: Path) -> Engine:
    engine = create_database_engine(f"sqlite:///{tmp_path / 'read.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE versions (id TEXT PRIMARY KEY, version INTEGER)"))
    return engine


def _version(engine: Engine) -> int | None:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT version FROM versions WHERE id = 'o-1'"))


def test_a_commit_by_another_connection_wakes_the_waiter(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    # The "projector": its own engine, as it would be in its own process.
    writer = create_database_engine(f"sqlite:///{tmp_path / 'read.db'}")
    changes = ReadModelChanges(engine)
    waiting = threading.Event()
    checks = 0

    def reached() -> bool:
        nonlocal checks
        checks += 1
        waiting.set()
        return (_version(engine) or 0) >= 2

    def project() -> None:
        waiting.wait()
        for version in (1, 2):
            with writer.begin() as conn:
                conn.execute(
                    text("INSERT OR REPLACE INTO versions VALUES ('o-1', :v)"), {"v": version}
                )

    projector = threading.Thread(target=project)
    projector.start()
    assert changes.wait_until(reached, max_wait_s=30)
    projector.join()
    # Woken by commits, not by a timer: one check before, at most one per commit after.
    assert checks <= 3
    writer.dispose()
    engine.dispose()


def test_without_a_commit_the_waiter_checks_only_at_start_and_deadline(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    changes = ReadModelChanges(engine)
    checks = 0

    def reached() -> bool:
        nonlocal checks
        checks += 1
        return _version(engine) is not None

    assert not changes.wait_until(reached, max_wait_s=0.3)
    # Not polled on a timer: once when it starts waiting, once more when time is up.
    assert checks == 2
    engine.dispose()


def test_the_watcher_thread_stops_when_nobody_waits(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    changes = ReadModelChanges(engine)
    assert not changes.wait_until(lambda: False, max_wait_s=0.05)
    # It notices within one poll interval that the last waiter left.
    watcher = changes._watcher
    if watcher is not None:
        watcher.join(timeout=5)
        assert not watcher.is_alive()
    assert changes.wait_until(lambda: True, max_wait_s=0.05)
    engine.dispose()
