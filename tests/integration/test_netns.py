"""devtools/netns.py: namespaces on one bridge reach each other and the root namespace until a
member is cut off, and again once it is healed; nothing is left behind."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence

import pytest

from devtools.netns import NetworkNamespaces, available
from devtools.waiting import wait_until

PORT = 9000
SERVER = (
    "import socket, sys\n"
    "s = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
    "while True:\n"
    "    s.accept()[0].close()\n"
)


def connects(prefix: Sequence[str], host: str) -> bool:
    """Whether a TCP connect to host:PORT from the namespace `prefix` runs in succeeds."""
    code = f"import socket; socket.create_connection(({host!r}, {PORT}), timeout=1).close()"
    return (
        subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True).returncode == 0
    )


@pytest.fixture
def network() -> Iterator[NetworkNamespaces]:
    """Two members, a and b, each with a TCP server on its address."""
    reason = available()
    if reason is not None:
        pytest.skip(f"cannot make network namespaces: {reason}")
    with NetworkNamespaces(["a", "b"]) as net:
        servers = [
            subprocess.Popen(
                [
                    *net.command_prefix(name),
                    sys.executable,
                    "-c",
                    SERVER,
                    net.address[name],
                    str(PORT),
                ]
            )
            for name in ("a", "b")
        ]
        try:
            for name in ("a", "b"):
                wait_until(
                    lambda n=name: connects((), net.address[n]), 10, lambda: "no server", 0.1
                )
            yield net
        finally:
            for server in servers:
                server.kill()
                server.wait()


def test_cut_member_is_unreachable_both_ways_until_healed(network: NetworkNamespaces) -> None:
    # Each in turn: one of them owns the lowest MAC on the bridge, and cutting that one must
    # not disturb the others either.
    for victim, other in (("a", "b"), ("b", "a")):
        cut, kept = network.address[victim], network.address[other]
        in_cut, in_kept = network.command_prefix(victim), network.command_prefix(other)
        assert connects(in_cut, kept) and connects(in_kept, cut)

        network.cut(victim)
        assert not connects((), cut), "clients in the root namespace lose the cut member"
        assert not connects(in_cut, kept), "the cut member loses its own outgoing links"
        assert not connects(in_kept, cut)
        assert connects((), kept), f"{other} stays reachable while {victim} is cut off"

        network.heal(victim)

        def healed(cut: str = cut, in_cut: Sequence[str] = in_cut, kept: str = kept) -> bool:
            return connects((), cut) and connects(in_cut, kept)

        wait_until(healed, 10, lambda: "not healed", 0.2)


def test_delete_leaves_no_namespace_or_link() -> None:
    reason = available()
    if reason is not None:
        pytest.skip(f"cannot make network namespaces: {reason}")
    net = NetworkNamespaces(["x"]).create()
    net.delete()
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert net.namespace["x"] not in namespaces
    assert net.bridge not in links
