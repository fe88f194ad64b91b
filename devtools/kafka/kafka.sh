#!/usr/bin/env bash
# Manage the local single-node Kafka broker: kafka.sh {fetch|start|stop|status|run}
# Env: KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_DATA_DIR, KAFKA_LIBS_DIR (see local_kafka.py).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

# Prefer the repo venv: it has kafka-python, which the readiness check imports.
python="$repo/.venv/bin/python"
if [[ ! -x "$python" ]]; then
    python="python3"
fi

# devtools is not an installed package: the repo root on PYTHONPATH makes it importable from any
# working directory (a relative KAFKA_DATA_DIR still means the caller's one).
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
# exec so signals (Ctrl-C, make's SIGTERM) reach the Python process directly.
exec "$python" -m devtools.local_kafka "$@"
