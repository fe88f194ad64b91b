"""devtools/toxiproxy.py against a real Toxiproxy server (built with `go install` on first use)
in front of a small TCP echo server: toxics, a cut, a reset, and the install command."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools import toxiproxy as toxiproxy_module
from devtools.toxiproxy import (
    Proxy,
    ToxiproxyError,
    ToxiproxyServer,
    ToxiproxyUnavailable,
    install,
)


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ToxiproxyServer]:
    try:
        install()
    except ToxiproxyUnavailable as exc:
        pytest.skip(f"Toxiproxy cannot be built here: {exc}")
    with ToxiproxyServer(tmp_path_factory.mktemp("toxiproxy") / "toxiproxy.log") as running:
        yield running


@pytest.fixture
def proxy(server: ToxiproxyServer) -> Iterator[Proxy]:
    """A proxy in front of a fresh echo server."""
    echo = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    echo.daemon_threads = True
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    created = server.client.create_proxy("echo", f"127.0.0.1:{echo.server_address[1]}")
    try:
        yield created
    finally:
        created.delete()
        echo.shutdown()
        echo.server_close()


def round_trip(proxy: Proxy, payload: bytes = b"ping", timeout: float = 5) -> bytes:
    with socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(4096)


def test_a_proxy_forwards_and_a_latency_toxic_delays_every_answer(proxy: Proxy) -> None:
    assert round_trip(proxy) == b"ping"
    with proxy.toxic("latency", {"latency": 300}) as name:
        assert [(t.name, t.type, t.attributes["latency"]) for t in proxy.toxics()] == [
            (name, "latency", 300)
        ]
        began = time.monotonic()
        assert round_trip(proxy) == b"ping"
        assert time.monotonic() - began >= 0.3  # a lower bound the toxic guarantees
    assert proxy.toxics() == []


def test_reset_peer_resets_and_a_cut_refuses_until_enabled(proxy: Proxy) -> None:
    with proxy.toxic("reset_peer", {"timeout": 0}), pytest.raises(ConnectionResetError):
        round_trip(proxy)
    with proxy.cut_off(), pytest.raises(ConnectionRefusedError):
        round_trip(proxy)
    assert round_trip(proxy) == b"ping"


def test_a_timeout_toxic_is_a_black_hole_and_reset_clears_everything(
    server: ToxiproxyServer, proxy: Proxy
) -> None:
    proxy.add_toxic("timeout", {"timeout": 0})
    proxy.add_toxic("bandwidth", {"rate": 1}, stream="upstream")
    proxy.disable()
    server.client.reset()
    assert proxy.toxics() == []
    assert round_trip(proxy) == b"ping"
    proxy.add_toxic("timeout", {"timeout": 0})
    with pytest.raises(TimeoutError):
        round_trip(proxy, timeout=1)  # the connection stays open and nothing comes back


def test_the_api_says_what_it_refused(server: ToxiproxyServer, proxy: Proxy) -> None:
    with pytest.raises(ToxiproxyError, match="HTTP 409"):
        server.client.create_proxy("echo", proxy.upstream)
    with pytest.raises(ToxiproxyError, match="HTTP 404"):
        server.client.proxy("no-such-proxy")
    assert server.client.proxy("echo").listen == proxy.listen
    assert server.client.version()


def test_the_install_command_prints_the_cached_binary(
    server: ToxiproxyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert toxiproxy_module.main(["install"]) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed == toxiproxy_module.binary_path() and printed.stat().st_mode & 0o111
