"""`make run`: the whole system on one machine, without Docker.

Starts a local Kafka broker (unless KAFKA_BOOTSTRAP_SERVERS points at one), then the command
API, the relay, the query API and the projector, each as its own process with its output
prefixed by its name. Ctrl-C (or SIGTERM) stops them all cleanly, broker last. If any process
dies, the others are stopped too, so a broken system never looks half-alive.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
PROCESSES = ("command-api", "command-relay", "query-api", "query-projector")
COLORS = ("\033[36m", "\033[33m", "\033[32m", "\033[35m", "\033[34m")
RESET = "\033[0m"


def _load_local_kafka() -> Any:
    path = REPO / "scripts" / "kafka" / "local_kafka.py"
    spec = importlib.util.spec_from_file_location("local_kafka", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["local_kafka"] = module
    spec.loader.exec_module(module)
    return module


def _pump(name: str, color: str, stream: IO[bytes], lock: threading.Lock) -> None:
    prefix = f"{color}{name:>16} |{RESET} " if sys.stdout.isatty() else f"{name:>16} | "
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            print(prefix + line, flush=True)


def _executable(name: str) -> str:
    # Console scripts live beside the interpreter of the venv `make run` uses.
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def main() -> int:
    """Run everything until interrupted; exit non-zero if a process died on its own."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    env = dict(os.environ)
    kafka = None
    if not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        local_kafka = _load_local_kafka()
        port = int(env.get("KAFKA_PORT", "9092"))
        data_dir = Path(env.get("KAFKA_DATA_DIR", REPO / ".data" / "kafka"))
        kafka = local_kafka.LocalKafka(port=port, data_dir=data_dir)
        print(f"starting local Kafka on 127.0.0.1:{port} (log: {data_dir}/broker.log)", flush=True)
        kafka.start()
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka.bootstrap_servers
    env.setdefault("PYTHONUNBUFFERED", "1")

    lock = threading.Lock()
    children: dict[str, subprocess.Popen[bytes]] = {}
    exit_code = 0
    try:
        for index, name in enumerate(PROCESSES):
            child = subprocess.Popen(
                [_executable(name)],
                env=env,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            children[name] = child
            assert child.stdout is not None
            threading.Thread(
                target=_pump,
                args=(name, COLORS[index % len(COLORS)], child.stdout, lock),
                daemon=True,
            ).start()
        print(
            "system up: command API http://127.0.0.1:{}  query API http://127.0.0.1:{}  "
            "(Ctrl-C stops everything)".format(
                env.get("COMMAND_API_PORT", "8001"), env.get("QUERY_API_PORT", "8002")
            ),
            flush=True,
        )
        while not stopping.is_set():
            for name, child in children.items():
                if child.poll() is not None:
                    print(f"{name} exited with code {child.returncode}; stopping the system")
                    exit_code = 1
                    stopping.set()
            stopping.wait(0.5)
    finally:
        _stop_all(children)
        if kafka is not None:
            print("stopping local Kafka", flush=True)
            kafka.stop()
    return exit_code


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    # Stop producers of work first (API, relay), then the read side, so nothing is cut mid-way.
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    for name, child in children.items():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop in time; killing it", flush=True)
            child.kill()
            child.wait()


if __name__ == "__main__":
    sys.exit(main())
