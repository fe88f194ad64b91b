"""Linux network namespaces on one bridge, so a process can be cut off from the network and healed.

A proxy sees only the links that lead to it; a broker cut off from its peers also loses the links
it opens itself. Here each member gets its own namespace with a veth pair into a bridge in the root
namespace (which has an address on it too, for clients); cut() takes the member's bridge side down,
heal() brings it up. Needs root and iproute2; available() says why not otherwise.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from types import TracebackType

__all__ = ["NetnsError", "NetworkNamespaces", "available"]

IP = "ip"


class NetnsError(RuntimeError):
    """An `ip` command failed."""


def _ip(*args: str) -> None:
    result = subprocess.run([IP, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")


def available() -> str | None:
    """None if namespaces can be made here, else the reason they cannot (for a named skip)."""
    if shutil.which(IP) is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"esoprobe{secrets.token_hex(3)}"
    result = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True)
    if result.returncode != 0:
        return f"`ip netns add` is not permitted here: {result.stderr.strip()}"
    subprocess.run([IP, "netns", "delete", probe], capture_output=True)
    return None


class NetworkNamespaces:
    """One namespace per member name on a private /24 bridge; members reachable from the root ns."""

    def __init__(self, members: Sequence[str]) -> None:
        """Describe the network; nothing exists until create()."""
        tag = secrets.token_hex(2)  # interface names have 15 characters at most
        self.bridge = f"esob{tag}"
        # 10.213.<random>.0/24: one subnet per run, away from the usual 10.0/10.1 networks.
        self.prefix = f"10.213.{secrets.randbelow(254) + 1}"
        self.root_address = f"{self.prefix}.1"
        self.members = list(members)
        self.namespace = {name: f"eso{tag}-{i}" for i, name in enumerate(self.members, 1)}
        self.address = {name: f"{self.prefix}.{i + 10}" for i, name in enumerate(self.members, 1)}
        self._host_veth = {name: f"esov{tag}h{i}" for i, name in enumerate(self.members, 1)}
        self._created: list[str] = []

    def create(self) -> NetworkNamespaces:
        """Make the bridge and every namespace; on failure remove what was made and raise."""
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            self._created.append("bridge")
            # A bridge takes the lowest MAC of its up ports unless given one: cutting that port
            # would change it, and the namespaces' ARP entries for the root address go stale.
            mac = "02:" + ":".join(f"{b:02x}" for b in secrets.token_bytes(5))
            _ip("link", "set", self.bridge, "address", mac)
            _ip("addr", "add", f"{self.root_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
            for name in self.members:
                self._add_member(name)
        except BaseException:
            self.delete()
            raise
        return self

    def _add_member(self, name: str) -> None:
        ns, host_side = self.namespace[name], self._host_veth[name]
        inner = host_side[:-2] + "n" + host_side[-1]
        _ip("netns", "add", ns)
        self._created.append(ns)
        _ip("link", "add", host_side, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("link", "set", host_side, "master", self.bridge)
        _ip("link", "set", host_side, "up")
        _ip("-n", ns, "addr", "add", f"{self.address[name]}/24", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "link", "set", "lo", "up")

    def command_prefix(self, name: str) -> tuple[str, ...]:
        """What to put before a command so it runs inside the member's namespace."""
        return (IP, "netns", "exec", self.namespace[name])

    def cut(self, name: str) -> None:
        """Cut the member off: its link to the bridge goes down, both directions at once."""
        _ip("link", "set", self._host_veth[name], "down")

    def heal(self, name: str) -> None:
        """Bring the member's link to the bridge up again."""
        _ip("link", "set", self._host_veth[name], "up")

    def delete(self) -> None:
        """Remove the namespaces (their veths go with them) and the bridge; ignore what is gone."""
        for created in reversed(self._created):
            if created == "bridge":
                subprocess.run([IP, "link", "delete", self.bridge], capture_output=True)
            else:
                subprocess.run([IP, "netns", "delete", created], capture_output=True)
        for host_side in self._host_veth.values():
            subprocess.run([IP, "link", "delete", host_side], capture_output=True)
        self._created.clear()

    def __enter__(self) -> NetworkNamespaces:
        return self.create()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.delete()
