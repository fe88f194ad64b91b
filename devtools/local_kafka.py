"""Run a real single-node Apache Kafka (KRaft) broker on 127.0.0.1 without Docker.

The broker jars come from Maven (see kafka/pom.xml beside this file); Java and Maven must be
installed. Plaintext by default; `security=SecureKafka(...)` gives SASL_SSL with ACLs
(devtools/kafka_security.py).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from devtools.kafka_security import (
    ADMIN_USER,
    KafkaSecrets,
    SecureKafka,
    grant_access,
    scram_format_arguments,
    secure_broker_properties,
)
from devtools.ports import accepts_connections, free_port, port_in_use

__all__ = [
    "KAFKA_VERSION",
    "LocalKafka",
    "LocalKafkaError",
    "ProxiedListener",
    "fetch_jars",
    "main",
]

log = logging.getLogger("devtools.local_kafka")

HERE = Path(__file__).resolve().parent
POM = HERE / "kafka" / "pom.xml"
REPO_ROOT = HERE.parent
NODE_ID = 1
_MARKER = ".complete"
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _read_kafka_version(pom: Path) -> str:
    """Return the kafka.version property of the pom, the single source of the broker version."""
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise RuntimeError(f"{pom} does not define the kafka.version property")
    return (node.text or "").strip()


KAFKA_VERSION = _read_kafka_version(POM)


class LocalKafkaError(RuntimeError):
    """The local broker or its tooling could not do what was asked."""


@dataclass(frozen=True)
class ProxiedListener:
    """One more plaintext listener on `port`, advertised as `advertised_port`: a fault proxy
    (devtools/toxiproxy.py) listens there and forwards to `port`.

    A client that bootstraps through the proxy learns the advertised address from the
    broker's metadata and so keeps talking through the proxy instead of going around it.
    """

    name: str  # the listener's name in the broker's config, e.g. RELAY
    port: int
    advertised_port: int


def _require_tool(name: str) -> str:
    """Return the path of an executable on PATH or fail with an install hint."""
    path = shutil.which(name)
    if path is None:
        raise LocalKafkaError(
            f"'{name}' was not found on PATH; the local Kafka broker needs Java 17+ and Maven 3.8+"
        )
    return path


def _default_libs_dir() -> Path:
    """Return KAFKA_LIBS_DIR or the per-version cache folder under ~/.cache."""
    override = os.environ.get("KAFKA_LIBS_DIR")
    if override:
        return Path(override).expanduser().resolve()
    return Path.home() / ".cache" / "event-sourced-orders" / f"kafka-{KAFKA_VERSION}" / "libs"


def fetch_jars() -> Path:
    """Download the broker's runtime jars with Maven once and return their folder."""
    libs = _default_libs_dir()
    if (libs / _MARKER).exists():
        return libs
    _require_tool("java")
    mvn = _require_tool("mvn")
    libs.parent.mkdir(parents=True, exist_ok=True)
    lock_path = libs.parent / f".{libs.name}.lock"
    with lock_path.open("w") as lock:
        # Serialise concurrent fetchers: parallel mvn runs race on ~/.m2 and waste bandwidth.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (libs / _MARKER).exists():
            return libs
        if libs.exists() and any(libs.iterdir()):
            # Not ours to delete: it may be a folder the user pointed KAFKA_LIBS_DIR at.
            raise LocalKafkaError(
                f"{libs} exists but holds no completed fetch (no {_MARKER} marker); "
                "remove it or point KAFKA_LIBS_DIR elsewhere"
            )
        staging_prefix = f".{libs.name}.staging-"
        # Holding the lock, any staging folder left here belongs to a fetcher that was killed.
        for leftover in libs.parent.glob(f"{staging_prefix}*"):
            shutil.rmtree(leftover, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=staging_prefix, dir=libs.parent))
        try:
            _run_maven(mvn, staging)
            (staging / _MARKER).write_text(f"{KAFKA_VERSION}\n")
            # A rename is atomic (and may replace an empty folder), so lock-free readers see
            # either no folder or a complete one.
            staging.rename(libs)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return libs


def _run_maven(mvn: str, out_dir: Path) -> None:
    """Copy the pom's runtime dependencies into out_dir."""
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        "-DincludeScope=runtime", f"-DoutputDirectory={out_dir}",
    ]  # fmt: skip
    log.info("fetching Kafka %s jars with Maven into %s", KAFKA_VERSION, out_dir)
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()[-40:]
        raise LocalKafkaError(
            f"mvn failed (exit {result.returncode}) resolving Kafka {KAFKA_VERSION}:\n"
            + "\n".join(output)
        )
    if not any(out_dir.glob("kafka_2.13-*.jar")):
        raise LocalKafkaError(f"mvn succeeded but no kafka_2.13 jar landed in {out_dir}")


def _new_cluster_id() -> str:
    """Return a random Kafka cluster id (base64url of 16 random bytes, like Uuid.randomUuid)."""
    # Generated here rather than with `StorageTool random-uuid` to save a JVM launch.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids that look like CLI flags
            return cluster_id


def _escape_property(value: str) -> str:
    """A value as a Java properties file holds it (PEM blocks span lines)."""
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _read_properties(path: Path) -> dict[str, str]:
    """Parse a simple key=value Java properties file."""
    props: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def _cmdline(pid: int) -> str | None:
    """Return the command line of a live process, or None if it is gone (or a zombie)."""
    proc_file = Path(f"/proc/{pid}/cmdline")
    if Path("/proc/self").exists():
        try:
            raw = proc_file.read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    result = subprocess.run(
        ["ps", "-ww", "-o", "command=", "-p", str(pid)], capture_output=True, text=True
    )
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _describe_cluster(
    bootstrap_servers: str, timeout: float, client_options: dict[str, Any]
) -> dict[str, Any]:
    """Send one metadata request through kafka-python's admin client and return the answer."""
    from kafka import KafkaAdminClient  # lazy: the module must import without kafka-python

    timeout_ms = max(int(timeout * 1000), 500)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="local-kafka-probe",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
        **client_options,
    )
    try:
        result: dict[str, Any] = admin.describe_cluster()
        return result
    finally:
        admin.close()


_LOG4J2 = """\
# Written by local_kafka.py. Quiet by default; kafka.server INFO keeps start/stop visible.
status = error
name = local-kafka
# Log4j's own shutdown hook races Kafka's and would swallow the shutdown messages.
shutdownHook = disable
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.stdout.ref = STDOUT
logger.server.name = kafka.server
logger.server.level = INFO
# The full config dump on every start would drown the interesting lines.
logger.config.name = kafka.server.KafkaConfig
logger.config.level = WARN
"""


class LocalKafka:
    """A single-node KRaft Kafka broker (combined broker+controller) on 127.0.0.1."""

    # The JVM heap; devtools/kafka_cluster.py runs three brokers at once with less each.
    heap_options: tuple[str, ...] = ("-Xmx512m", "-Xms256m")
    # The node.id is_ready() looks for among the brokers (a cluster node has its own).
    node_id: int = NODE_ID

    def __init__(
        self,
        port: int,
        data_dir: Path,
        controller_port: int | None = None,
        log_path: Path | None = None,
        security: SecureKafka | None = None,
        proxied_listeners: Sequence[ProxiedListener] = (),
        host: str = "127.0.0.1",
        command_prefix: Sequence[str] = (),
    ) -> None:
        """Describe the broker; nothing starts until start().

        host is the address its listeners bind and advertise; command_prefix goes before the
        java command (e.g. `ip netns exec NS` from devtools/netns.py, where host lives).
        """
        if security is not None and proxied_listeners:
            raise LocalKafkaError("proxied listeners are plaintext; a secure broker has none")
        self.proxied_listeners = tuple(proxied_listeners)
        self.host = host
        self.command_prefix = tuple(command_prefix)
        self.port = port
        self.data_dir = Path(data_dir).resolve()
        self.controller_port = controller_port if controller_port is not None else free_port()
        self.log_path = Path(log_path) if log_path is not None else self.data_dir / "broker.log"
        self.kraft_dir = self.data_dir / "kraft"
        self.properties_path = self.data_dir / "server.properties"
        self.log4j_path = self.data_dir / "log4j2.properties"
        self.pid_path = self.data_dir / "broker.pid"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0
        self.security = security
        # The CA file and the users' password files clients of a secure broker need.
        self.secrets = KafkaSecrets(self.data_dir / "security") if security else None

    def __repr__(self) -> str:
        return f"LocalKafka({self.bootstrap_servers!r}, data_dir={str(self.data_dir)!r})"

    @property
    def bootstrap_servers(self) -> str:
        """The address clients connect to."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker JVM's pid if it is running (started here or recorded in broker.pid)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                return self._proc.pid
            self._proc = None
        return self._recorded_pid()

    @property
    def is_running(self) -> bool:
        """Whether the broker JVM is alive (it may still be starting up)."""
        return self.pid is not None

    @property
    def cluster_id(self) -> str | None:
        """The cluster id the storage was formatted with, if formatted."""
        meta = self.kraft_dir / "meta.properties"
        return _read_properties(meta).get("cluster.id") if meta.exists() else None

    def is_ready(self, timeout: float = 5.0) -> bool:
        """Whether this broker answers a metadata request and lists itself."""
        if not self.is_running or not accepts_connections(self.port, self.host):
            return False
        try:
            cluster = _describe_cluster(self.bootstrap_servers, timeout, self._probe_options())
        except Exception:  # any client-side failure just means "not ready yet"
            return False
        brokers = cluster.get("brokers") or []
        if not any(b.get("broker_id") == self.node_id for b in brokers):
            return False
        # Guards against a different broker squatting on our port answering in our place.
        return cluster.get("cluster_id") == self.cluster_id

    def start(self, timeout: float = 90) -> None:
        """Start the broker and block until it serves metadata requests."""
        if self.is_running:
            raise LocalKafkaError(
                f"a broker is already running from {self.data_dir} (pid {self.pid})"
            )
        java = _require_tool("java")
        libs = fetch_jars()
        for port in (self.port, self.controller_port, *(p.port for p in self.proxied_listeners)):
            if port_in_use(port):
                raise LocalKafkaError(f"port {port} on 127.0.0.1 is already in use")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self.secrets is not None:
            if self.cluster_id is not None and not self.secrets.exist():
                raise LocalKafkaError(
                    f"{self.kraft_dir} was formatted without the secrets in "
                    f"{self.secrets.directory}; remove {self.data_dir} to start afresh"
                )
            self.secrets.ensure()
        self._write_config()
        deadline = time.monotonic() + timeout
        self._format_storage(java, libs)

        cmd = [
            *self.command_prefix, java, *self.heap_options,
            f"-Dlog4j2.configurationFile={self.log4j_path}",
            "-cp", f"{libs}/*", "kafka.Kafka", str(self.properties_path),
        ]  # fmt: skip
        with self.log_path.open("ab") as log_file:
            self._log_offset = log_file.tell()
            # A new session keeps the JVM alive after a CLI parent exits and keeps the terminal's
            # Ctrl-C away from it, so the parent decides how it shuts down.
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        log.info("started Kafka %s (pid %d) on %s", KAFKA_VERSION, self._proc.pid, self.port)
        self._wait_ready(deadline, timeout)
        if self.security is not None and self.secrets is not None:
            remaining = max(deadline - time.monotonic(), 5.0)
            try:
                grant_access(self.bootstrap_servers, self.secrets, self.security, remaining)
            except Exception as exc:
                # A broker without its ACLs is of no use to the caller; don't leave it running.
                self.kill()
                raise LocalKafkaError(
                    f"granting access on {self.bootstrap_servers} failed: {exc}; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                ) from exc

    def _probe_options(self) -> dict[str, Any]:
        """kafka-python options for the readiness probe: the admin user on a secure broker."""
        return {} if self.secrets is None else self.secrets.client_options(ADMIN_USER)

    def _wait_ready(self, deadline: float, timeout: float) -> None:
        """Poll until ready; on failure kill the JVM and raise with the log tail."""
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                self._forget_pid()
                raise LocalKafkaError(
                    f"Kafka broker exited with code {code} during startup; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise LocalKafkaError(
                    f"Kafka broker not ready on {self.bootstrap_servers} after {timeout:g}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if self.is_ready(timeout=min(5.0, max(remaining, 0.5))):
                return
            time.sleep(0.2)

    def stop(self, timeout: float = 30) -> None:
        """Shut the broker down cleanly with SIGTERM, escalating to SIGKILL after timeout."""
        pid = self.pid
        if pid is None:
            self._forget_pid()
            return
        log.info("stopping Kafka broker pid %d", pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not self._wait_exit(pid, timeout):
            log.warning("Kafka broker pid %d ignored SIGTERM for %.0fs; killing it", pid, timeout)
            self.kill()
            return
        self._forget_pid()

    def kill(self) -> None:
        """SIGKILL the broker at once, as a crash would."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not self._wait_exit(pid, 10):
                raise LocalKafkaError(f"Kafka broker pid {pid} survived SIGKILL")
        self._forget_pid()

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines the current (or last) JVM wrote to the log file."""
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(self._log_offset)
                text = log_file.read().decode(errors="replace")
        except OSError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:]) or "<empty log>"

    def __enter__(self) -> LocalKafka:
        if not self.is_running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        """Wait for pid to exit; True if it did within timeout."""
        if self._proc is not None and self._proc.pid == pid:
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            self._proc = None
            return True
        # Not our child (started by another CLI call), so poll instead of wait().
        deadline = time.monotonic() + timeout
        while self._is_our_broker(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _recorded_pid(self) -> int | None:
        """Return the pid in broker.pid if that process is still this data dir's broker."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._is_our_broker(pid) else None

    def _is_our_broker(self, pid: int) -> bool:
        """Tell whether pid is alive and is the JVM running this data dir's config."""
        # Checking the command line protects against a recycled pid after a reboot or crash.
        cmdline = _cmdline(pid)
        return (
            cmdline is not None
            and "kafka.Kafka" in cmdline
            and (str(self.properties_path) in cmdline)
        )

    def _forget_pid(self) -> None:
        """Drop the pid file once the JVM is gone."""
        self._proc = None
        self.pid_path.unlink(missing_ok=True)

    def _write_config(self) -> None:
        """Write server.properties and log4j2.properties into data_dir."""
        props = {
            "process.roles": "broker,controller",
            "node.id": str(NODE_ID),
            "controller.quorum.voters": f"{NODE_ID}@{self.host}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.kraft_dir),
            # A single node cannot satisfy the production default replication factor of 3.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            # Consumers in tests should not wait 3 s for a rebalance that never gets more members.
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            # After a kill() the restarted broker cannot register until the controller expires the
            # dead incarnation's session (default 9 s); a shorter one keeps fault tests quick.
            "broker.session.timeout.ms": "4000",
            "broker.heartbeat.interval.ms": "1000",
        }
        for extra in self.proxied_listeners:
            props["listeners"] += f",{extra.name}://127.0.0.1:{extra.port}"
            props["advertised.listeners"] += f",{extra.name}://127.0.0.1:{extra.advertised_port}"
            props["listener.security.protocol.map"] += f",{extra.name}:PLAINTEXT"
        if self.secrets is not None:
            props.update(secure_broker_properties(self.secrets, self.port, self.controller_port))
        body = "".join(f"{key}={_escape_property(value)}\n" for key, value in props.items())
        text = "# Written by local_kafka.py on every start.\n" + body
        if self.secrets is not None:
            # It holds the broker's private key and the admin password.
            self.properties_path.touch(mode=0o600)
            self.properties_path.chmod(0o600)
        self.properties_path.write_text(text)
        self.log4j_path.write_text(_LOG4J2)

    def _storage_cluster_id(self) -> str:
        """The cluster id a fresh log dir is formatted with (a cluster's nodes share one)."""
        return _new_cluster_id()

    def _format_storage(self, java: str, libs: Path) -> None:
        """Format the KRaft log dir unless it already holds a formatted cluster."""
        if (self.kraft_dir / "meta.properties").exists():
            return  # reuse: reformatting would wipe topics and committed offsets
        cmd = [
            java, f"-Dlog4j2.configurationFile={self.log4j_path}", "-cp", f"{libs}/*",
            "kafka.tools.StorageTool", "format",
            "-t", self._storage_cluster_id(), "-c", str(self.properties_path),
        ]  # fmt: skip
        if self.secrets is not None:
            cmd += scram_format_arguments(self.secrets)
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if result.returncode != 0:
            raise LocalKafkaError(
                f"formatting {self.kraft_dir} failed (exit {result.returncode}):\n"
                + (result.stdout + result.stderr).strip()
            )


# ---------------------------------------------------------------------------------------------
# CLI


class _Interrupted(Exception):
    """Raised from a signal handler to unwind `run` into its cleanup."""


def _from_env() -> LocalKafka:
    """Build the broker the CLI manages from KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_DATA_DIR.

    KAFKA_SECURE=1 selects secure mode for KAFKA_TOPIC and KAFKA_GROUP_ID.
    """
    data_dir = os.environ.get("KAFKA_DATA_DIR") or str(REPO_ROOT / ".data" / "kafka")
    security = None
    if os.environ.get("KAFKA_SECURE") == "1":
        security = SecureKafka(
            topic=os.environ.get("KAFKA_TOPIC", SecureKafka.topic),
            group_id=os.environ.get("KAFKA_GROUP_ID", SecureKafka.group_id),
        )
    return LocalKafka(
        port=int(os.environ.get("KAFKA_PORT", "9092")),
        data_dir=Path(data_dir),
        controller_port=int(os.environ.get("KAFKA_CONTROLLER_PORT", "9093")),
        security=security,
    )


def _cmd_start(kafka: LocalKafka) -> int:
    if kafka.is_running:
        print(f"Kafka already running (pid {kafka.pid}) from {kafka.data_dir}", file=sys.stderr)
        return 0 if kafka.is_ready() else 1
    began = time.monotonic()
    kafka.start()
    print(
        f"Kafka {KAFKA_VERSION} ready on {kafka.bootstrap_servers} (pid {kafka.pid}, "
        f"{time.monotonic() - began:.1f}s, log {kafka.log_path})",
        file=sys.stderr,
    )
    if kafka.secrets is not None:
        print(f"SASL_SSL: CA and password files in {kafka.secrets.directory}", file=sys.stderr)
    print(kafka.bootstrap_servers)
    return 0


def _cmd_stop(kafka: LocalKafka) -> int:
    pid = kafka.pid
    if pid is None:
        print(f"no Kafka broker running from {kafka.data_dir}", file=sys.stderr)
        return 0
    kafka.stop()
    print(f"Kafka broker pid {pid} stopped", file=sys.stderr)
    return 0


def _cmd_status(kafka: LocalKafka) -> int:
    pid = kafka.pid
    if pid is None:
        print(f"Kafka: not running ({kafka.data_dir})")
        return 1
    if not kafka.is_ready():
        print(f"Kafka: pid {pid} running but not answering on {kafka.bootstrap_servers}")
        return 1
    print(f"Kafka: ready on {kafka.bootstrap_servers} (pid {pid})")
    return 0


def _cmd_run(kafka: LocalKafka) -> int:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise _Interrupted(signum)

    if kafka.is_running:
        raise LocalKafkaError(f"a broker from {kafka.data_dir} is already running; stop it first")
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    code = 0
    try:
        _cmd_start(kafka)
        print("Kafka running in the foreground; Ctrl-C stops it", file=sys.stderr)
        while kafka.is_running:
            time.sleep(0.5)
        print(
            f"Kafka broker exited by itself; log {kafka.log_path}:\n{kafka.log_tail()}",
            file=sys.stderr,
        )
        code = 1
    except _Interrupted:
        pass
    finally:
        # A second Ctrl-C must not abandon a half-stopped JVM; stop() escalates on its own.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        was_running = kafka.is_running
        kafka.stop()
        if was_running:
            print("Kafka stopped", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point for `python -m devtools.local_kafka {fetch,start,stop,status,run}`."""
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog="env: KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), "
        "KAFKA_DATA_DIR (<repo>/.data/kafka), KAFKA_LIBS_DIR (~/.cache/...), "
        "KAFKA_SECURE=1 (SASL_SSL with ACLs for KAFKA_TOPIC and KAFKA_GROUP_ID)",
    )
    parser.add_argument(
        "command",
        choices=["fetch", "start", "stop", "status", "run"],
        help="fetch jars | start in background | stop | status (exit 0 if ready) | "
        "run in foreground",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "fetch":
            print(fetch_jars())
            return 0
        kafka = _from_env()
        handlers = {"start": _cmd_start, "stop": _cmd_stop, "status": _cmd_status, "run": _cmd_run}
        return handlers[args.command](kafka)
    except LocalKafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
