"""Shopify's Toxiproxy for network-fault tests: installed pinned with `go install` into a cache
folder, a server started on a free loopback port, and a small typed client for its HTTP API.

Toxiproxy is a TCP proxy whose links can be given toxics (latency, connection resets, a black
hole, a bandwidth limit) or be switched off, so a test that puts it between two processes can
break the network between them without root or network namespaces.
CLI: `python -m devtools.toxiproxy install` (what `make toxiproxy` runs).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Self

from devtools.ports import free_port
from devtools.processes import ServiceProcess, child_env

__all__ = [
    "TOXIPROXY_VERSION",
    "Proxy",
    "Toxic",
    "ToxiproxyClient",
    "ToxiproxyError",
    "ToxiproxyServer",
    "ToxiproxyUnavailable",
    "install",
    "main",
]

TOXIPROXY_VERSION = "2.12.0"
# The server's package; the binary `go install` builds from it is named `server`.
GO_PACKAGE = "github.com/Shopify/toxiproxy/v2/cmd/server"
BINARY_NAME = "toxiproxy-server"
INSTALL_TIMEOUT_S = 900  # a first build fetches and compiles its dependencies

ToxicType = Literal["latency", "bandwidth", "timeout", "reset_peer", "slicer", "limit_data"]
Stream = Literal["upstream", "downstream"]  # client -> server, server -> client

# An explicit empty proxy map: an http_proxy in the environment must not route our loopback
# API calls elsewhere.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ToxiproxyError(RuntimeError):
    """Toxiproxy could not be installed or started, or its API refused a request."""


class ToxiproxyUnavailable(ToxiproxyError):
    """This machine cannot build Toxiproxy: the Go toolchain is missing."""


def binary_path() -> Path:
    """Where the pinned server binary lives once installed (a per-version cache folder)."""
    cache = Path.home() / ".cache" / "event-sourced-orders"
    return cache / f"toxiproxy-{TOXIPROXY_VERSION}" / "bin" / BINARY_NAME


def install() -> Path:
    """Build the pinned server with `go install` through the Go module proxy, once; its path.

    Raises ToxiproxyUnavailable without Go, ToxiproxyError if the build fails.
    """
    binary = binary_path()
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise ToxiproxyUnavailable(
            f"the Go toolchain ('go') is not on PATH; Toxiproxy {TOXIPROXY_VERSION} is built "
            f"with `go install {GO_PACKAGE}@v{TOXIPROXY_VERSION}` (install Go 1.23+)"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    with (binary.parent / ".install.lock").open("w") as lock:
        # Concurrent test sessions build it once; the others wait and reuse it.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():
            return binary
        with tempfile.TemporaryDirectory(prefix=".staging-", dir=binary.parent) as staging:
            _go_install(go, Path(staging))
            # A rename is atomic: a reader sees no binary or a complete one.
            os.replace(Path(staging) / "server", binary)
    return binary


def _go_install(go: str, gobin: Path) -> None:
    # -mod=mod: resolve the module's own go.mod even when GOFLAGS says otherwise; cwd is the
    # staging folder so no go.mod of ours (or of a parent folder) takes part.
    env = child_env({"GOBIN": str(gobin), "GOFLAGS": "-mod=mod"})
    cmd = [go, "install", f"{GO_PACKAGE}@v{TOXIPROXY_VERSION}"]
    try:
        result = subprocess.run(
            cmd,
            cwd=gobin,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise ToxiproxyError(f"{' '.join(cmd)} took over {INSTALL_TIMEOUT_S} s") from exc
    if result.returncode != 0 or not (gobin / "server").exists():
        output = (result.stdout + result.stderr).strip().splitlines()[-30:]
        raise ToxiproxyError(
            f"{' '.join(cmd)} failed (exit {result.returncode}):\n" + "\n".join(output)
        )


@dataclass(frozen=True)
class Toxic:
    """A toxic as the API describes it."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any]


class ToxiproxyClient:
    """The server's HTTP API: proxies, toxics, reset."""

    def __init__(self, api_url: str, timeout_s: float = 10.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout_s = timeout_s

    def version(self) -> str:
        """The server's version string ("git" for a build from `go install`)."""
        answer = self.request("GET", "/version")
        return str(answer.get("version") if isinstance(answer, dict) else answer)

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> Proxy:
        """A new enabled proxy from `listen` (port 0: the server picks one) to `upstream`."""
        body = self.request(
            "POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream}
        )
        return Proxy(self, body["name"], body["listen"], body["upstream"])

    def proxy(self, name: str) -> Proxy:
        """An existing proxy by name."""
        body = self.request("GET", f"/proxies/{name}")
        return Proxy(self, body["name"], body["listen"], body["upstream"])

    def reset(self) -> None:
        """Enable every proxy and remove every toxic."""
        self.request("POST", "/reset")

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One API call; the decoded JSON answer (None for an empty one)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.api_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _OPENER.open(request, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace").strip()
            raise ToxiproxyError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
        except OSError as exc:
            raise ToxiproxyError(f"{method} {path}: {exc}") from exc
        if not payload.strip():
            return None
        try:
            return json.loads(payload)
        except ValueError:
            return payload.decode(errors="replace").strip()  # GET /version may be plain text


class Proxy:
    """One proxy: a listening address forwarding to an upstream, with its toxics."""

    def __init__(self, client: ToxiproxyClient, name: str, listen: str, upstream: str) -> None:
        self.client = client
        self.name = name
        self.listen = listen
        self.upstream = upstream

    def __repr__(self) -> str:
        return f"Proxy({self.name!r}, {self.listen} -> {self.upstream})"

    @property
    def listen_port(self) -> int:
        """The port clients connect to."""
        return int(self.listen.rsplit(":", 1)[1])

    def add_toxic(
        self,
        type_: ToxicType,
        attributes: Mapping[str, int | float],
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
        name: str | None = None,
    ) -> str:
        """Add a toxic to every connection (new and open) of one direction; its name."""
        body = {
            "name": name or f"{type_}_{stream}",
            "type": type_,
            "stream": stream,
            "toxicity": toxicity,
            "attributes": dict(attributes),
        }
        answer = self.client.request("POST", f"/proxies/{self.name}/toxics", body)
        return str(answer["name"])

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic by name."""
        self.client.request("DELETE", f"/proxies/{self.name}/toxics/{name}")

    def toxics(self) -> list[Toxic]:
        """The toxics in place now."""
        answer = self.client.request("GET", f"/proxies/{self.name}/toxics") or []
        return [
            Toxic(t["name"], t["type"], t["stream"], float(t["toxicity"]), t["attributes"])
            for t in answer
        ]

    @contextlib.contextmanager
    def toxic(
        self,
        type_: ToxicType,
        attributes: Mapping[str, int | float],
        *,
        stream: Stream = "downstream",
        toxicity: float = 1.0,
    ) -> Iterator[str]:
        """A toxic in place for the block (removed again also on failure)."""
        name = self.add_toxic(type_, attributes, stream=stream, toxicity=toxicity)
        try:
            yield name
        finally:
            self.remove_toxic(name)

    def disable(self) -> None:
        """Cut the peer off: stop listening and drop every open connection."""
        self._update({"enabled": False})

    def enable(self) -> None:
        """Listen again (after disable())."""
        self._update({"enabled": True})

    @contextlib.contextmanager
    def cut_off(self) -> Iterator[None]:
        """The proxy disabled for the block (enabled again also on failure)."""
        self.disable()
        try:
            yield
        finally:
            self.enable()

    def set_upstream(self, upstream: str) -> None:
        """Forward to another address (drops the open connections)."""
        self._update({"upstream": upstream})
        self.upstream = upstream

    def delete(self) -> None:
        """Remove the proxy (it stops listening)."""
        self.client.request("DELETE", f"/proxies/{self.name}")

    def _update(self, fields: Mapping[str, Any]) -> None:
        self.client.request("POST", f"/proxies/{self.name}", fields)


class ToxiproxyServer:
    """A Toxiproxy server on 127.0.0.1 (its API on a free port), installed on first use."""

    def __init__(self, log_path: Path, port: int | None = None) -> None:
        self.log_path = log_path
        self.port = port if port is not None else free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.client = ToxiproxyClient(self.api_url)
        self._process: ServiceProcess | None = None

    def start(self, timeout: float = 30) -> Self:
        """Install if needed, start, and wait until the API answers."""
        argv = [str(install()), "-host", "127.0.0.1", "-port", str(self.port)]
        # info: one line per accepted client and per toxic; the default also traces every link.
        env = child_env({"LOG_LEVEL": "info"})
        self._process = ServiceProcess("toxiproxy", argv, env, self.log_path).start()
        self._process.wait_http(f"{self.api_url}/version", timeout)
        return self

    def output(self) -> str:
        """What the server logged so far (one JSON object a line: accepted clients, toxics)."""
        return self._process.output() if self._process is not None else ""

    def stop(self) -> None:
        """Stop the server (every proxy with it)."""
        if self._process is not None:
            self._process.stop(10)
            self._process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    """`install`: build the pinned server (if not cached) and print its path."""
    parser = argparse.ArgumentParser(prog="python -m devtools.toxiproxy", description=__doc__)
    parser.add_argument("command", choices=["install"])
    parser.parse_args(argv)
    try:
        print(install())
    except ToxiproxyError as exc:
        print(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
