"""A private PostgreSQL cluster in a project folder, from Debian's server package, no Docker.

initdb on first start (trust auth for the `postgres` role, loopback only, its socket in the
data folder), pg_ctl to start, restart and stop. As root the server runs as the `postgres`
system user, since PostgreSQL refuses to run as root; the folder is then handed to that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

from devtools.ports import accepts_connections, port_in_use
from devtools.waiting import wait_until

__all__ = ["LocalPostgres", "LocalPostgresError", "find_pg_bin", "install_hint"]

SERVER_PACKAGE = "postgresql"


class LocalPostgresError(RuntimeError):
    """The private PostgreSQL cluster could not do what was asked."""


def find_pg_bin() -> Path | None:
    """The newest installed PostgreSQL server bin folder (Debian's layout first), or None."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def install_hint() -> str:
    """How to get the server binaries on Debian or Ubuntu."""
    return f"install Debian's server package: sudo apt-get install -y {SERVER_PACKAGE}"


def install_server_package() -> bool:
    """apt-get install the server package when we are root on Debian; True if it is there."""
    if find_pg_bin() is not None:
        return True
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", SERVER_PACKAGE]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return find_pg_bin() is not None


class LocalPostgres:
    """One PostgreSQL server on 127.0.0.1:port with its data in data_dir/data."""

    def __init__(self, data_dir: Path, port: int, bin_dir: Path | None = None) -> None:
        """Describe the server; nothing runs until start()."""
        self.base_dir = Path(data_dir).resolve()
        self.data_dir = self.base_dir / "data"
        self.log_path = self.base_dir / "postgres.log"
        self.port = port
        found = bin_dir or find_pg_bin()
        if found is None:
            raise LocalPostgresError(f"PostgreSQL's server binaries are missing; {install_hint()}")
        self.bin_dir = found
        # PostgreSQL refuses to run as root: run its tools as the `postgres` system user then.
        self._as_root = os.geteuid() == 0
        self._prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []

    def __repr__(self) -> str:
        return f"LocalPostgres(port={self.port}, data_dir={str(self.data_dir)!r})"

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of one database of this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def is_running(self) -> bool:
        """Whether pg_ctl reports a server running from this data folder."""
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._pg_ctl("status").returncode == 0

    def start(self, timeout: float = 60) -> None:
        """initdb if the folder is new, then start the server and wait until it accepts."""
        if self.is_running:
            raise LocalPostgresError(f"a server already runs from {self.data_dir}")
        if port_in_use(self.port):
            raise LocalPostgresError(f"port {self.port} on 127.0.0.1 is already in use")
        self._prepare_folder()
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir)]
            self._run([*initdb, "-U", "postgres", "-A", "trust", "-E", "UTF8"], "initdb")
        options = (
            f"-p {self.port} -k {self.base_dir} -c listen_addresses=127.0.0.1 "
            # Many short-lived connections from a dozen processes; the default 100 is tight.
            "-c max_connections=300"
        )
        self._run(self._pg_ctl_argv("-l", str(self.log_path), "-o", options, "-w", "start"))
        wait_until(
            lambda: accepts_connections(self.port),
            timeout,
            lambda: f"PostgreSQL not accepting on {self.port}; log {self.log_path}",
            0.1,
        )

    def restart(self) -> None:
        """pg_ctl restart -m fast: sessions are cut, the server is back on the same port."""
        # -l again: without it the new server would write to our pipes and keep them open.
        self._run(self._pg_ctl_argv("-l", str(self.log_path), "-m", "fast", "-w", "restart"))

    def stop(self) -> None:
        """pg_ctl stop -m fast, if it runs."""
        if self.is_running:
            self._run(self._pg_ctl_argv("-m", "fast", "-w", "stop"))

    def create_database(self, name: str) -> bool:
        """CREATE DATABASE name unless it exists; True if it was created."""
        import psycopg  # lazy: only the PostgreSQL paths need the driver

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
            ).fetchone()
            if exists:
                return False
            conn.execute(f'CREATE DATABASE "{name}"')
            return True

    def log_tail(self, lines: int = 30) -> str:
        """The server log's last lines, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:]) or "<empty log>"

    def _prepare_folder(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.base_dir.chmod(0o700)
        if self._as_root:
            shutil.chown(self.base_dir, "postgres")
            check = subprocess.run([*self._prefix, "test", "-w", str(self.base_dir)])
            if check.returncode != 0:
                raise LocalPostgresError(
                    f"the postgres user cannot reach {self.base_dir}: a parent folder is not "
                    "searchable by others (chmod o+x it, or choose another POSTGRES_DATA_DIR)"
                )

    def _pg_ctl_argv(self, *args: str) -> list[str]:
        return [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self._prefix, *self._pg_ctl_argv(*args)], capture_output=True, text=True
        )

    def _run(self, argv: list[str], what: str | None = None) -> None:
        result = subprocess.run(
            [*self._prefix, *argv], stdin=subprocess.DEVNULL, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise LocalPostgresError(
                f"{what or ' '.join(argv[:1] + argv[-1:])} failed (exit {result.returncode}): "
                f"{(result.stdout + result.stderr).strip()}\nlog {self.log_path}:\n"
                + self.log_tail()
            )
