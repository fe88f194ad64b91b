"""kill -9 in the middle of group-committed batches: two processes of four threads append to one
SQLite log and print each append once it returned; both are killed while batches are in
flight. Every append acknowledged before the kill is in the log whole, and nothing is in it
half: a batch commits all its requests or none of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from command_service.adapters.event_store import EventStore
from devtools.waiting import wait_until
from shared.contract.envelope import EventEnvelope
from shared.infra.db import create_database_engine

REPO = Path(__file__).resolve().parents[2]

# Each thread appends two events to a new stream per command, then prints the stream id and
# the largest batch its process has committed so far.
WRITER = """
import sys, threading
from command_service.adapters.event_store import EventStore, NewEvent
from shared.infra.db import create_database_engine

store = EventStore(create_database_engine(sys.argv[1]))
store.create_schema()
printing = threading.Lock()

def write(name):
    n = 0
    while True:
        n += 1
        stream = f"{name}-{n}"
        store.append(stream, 0, [NewEvent("A", {"n": n}, {}), NewEvent("B", {"n": n}, {})])
        with printing:
            sys.stdout.write(f"{stream} {store.group_commit.stats.largest}\\n")
            sys.stdout.flush()

for i in range(4):
    threading.Thread(target=write, args=(f"{sys.argv[2]}.{i}",), daemon=True).start()
sys.stdout.write("started\\n")
sys.stdout.flush()
threading.Event().wait()
"""


class Acks:
    """The stream ids one writer process printed (an append it saw return)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut by the kill was never acknowledged
                self.lines.append(line.strip())

    def finish(self) -> set[str]:
        self._reader.join(10)
        return {line.split()[0] for line in self.lines if line != "started"}

    def largest_batch(self) -> int:
        """The largest batch the process had committed by its last acknowledgement."""
        return max(int(line.split()[1]) for line in self.lines if line != "started")


def test_kill_9_mid_batch_loses_no_acknowledged_append_and_leaves_no_half(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    EventStore(create_database_engine(url)).create_schema()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writers = [
        Acks(
            subprocess.Popen(
                [sys.executable, "-c", WRITER, url, f"p{i}"],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=REPO,
            )
        )
        for i in range(2)
    ]
    try:
        wait_until(lambda: all(len(w.lines) > 200 for w in writers), 60, "writers too slow")
    finally:
        for writer in writers:
            writer.process.send_signal(signal.SIGKILL)
    for writer in writers:
        writer.process.wait(10)
    acknowledged = set().union(*(w.finish() for w in writers))

    store = EventStore(create_database_engine(url))
    log: list[EventEnvelope] = []
    while page := store.read_all(log[-1].position if log else 0, 1000):
        log += page
    assert [e.position for e in log] == list(range(1, len(log) + 1)), "positions not gapless"
    per_stream = Counter(e.stream_id for e in log)
    half = {stream: count for stream, count in per_stream.items() if count != 2}
    assert half == {}, f"appends in the log with a part missing: {half}"
    lost = acknowledged - set(per_stream)
    assert lost == set(), f"{len(lost)} acknowledged appends are not in the log"
    assert len(acknowledged) > 400
    # The threads did share transactions, so the kill did land among batches of several.
    assert max(w.largest_batch() for w in writers) > 1
