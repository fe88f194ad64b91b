"""A throwaway PostgreSQL cluster for tests that run the same suite against SQLite and PostgreSQL.

Uses Debian's server binaries when they are installed; the cluster lives in a temp folder on a
free port with trust auth, and is removed when the session ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.ports import accepts_connections, free_port


@contextmanager
def throwaway_postgres(bin_dir: Path) -> Iterator[str]:
    """Start a private cluster and yield a SQLAlchemy URL to its `postgres` database."""
    # PostgreSQL refuses to run as root, so run it as the `postgres` system user then.
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="orders-pg-"))
    data = base / "data"
    if as_root:
        shutil.chown(base, "postgres")
        base.chmod(0o700)
    port = free_port()
    log = base / "postgres.log"
    subprocess.run(
        [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-o",
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not accepts_connections(port):
            time.sleep(0.1)
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)
