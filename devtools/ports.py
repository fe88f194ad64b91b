"""TCP ports on 127.0.0.1 for the processes tests, benchmarks and `make run` start."""

from __future__ import annotations

import socket

__all__ = ["accepts_connections", "free_port", "port_in_use"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:port (so we could not bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR so TIME_WAIT leftovers of our own previous run don't count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
        return False


def accepts_connections(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether a TCP connect to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
