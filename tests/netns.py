"""Hosts on one machine: Linux network namespaces on a private bridge, made and removed here.

Each host is a namespace `bf13-<name>` with its loopback up and one veth into the
bridge `bf13br0`, whose own address (10.213.0.1) is the root namespace's door: the
test itself, its pages and its health checks live there. Nothing outside
10.213.0.0/24 is touched. A host may be given only routes to some others (an agent's
host reaches NATS and storage, never the scheduler or the database), and may be cut
off the network and joined again.
"""

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

SUBNET_PREFIX = "10.213.0"
BRIDGE = "bf13br0"
BRIDGE_ADDRESS = f"{SUBNET_PREFIX}.1"
NAMESPACE_PREFIX = "bf13-"


class NamespacesUnavailable(RuntimeError):
    """This machine does not let the test make namespaces (not root, no `ip`, a container)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


@dataclass(frozen=True)
class Host:
    """One host: its namespace, its address, and the name of its veth's root end."""

    name: str
    address: str
    index: int

    @property
    def namespace(self) -> str:
        """The network namespace the host's processes run in."""
        return f"{NAMESPACE_PREFIX}{self.name}"

    @property
    def root_link(self) -> str:
        """The veth end on the bridge (bf13v<index>): down, the host is off the network."""
        return f"bf13v{self.index}"

    def run(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside the host: `ip netns exec` execs it, so its PID is the program's."""
        return ["ip", "netns", "exec", self.namespace, *argv]


@dataclass
class Hosts:
    """The bridge and the hosts made on it; remove() takes down everything made."""

    hosts: dict[str, Host] = field(default_factory=dict)
    _bridge_made: bool = False

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def make_bridge(self) -> None:
        """The bridge with the root namespace's address; refuses to share one already there."""
        if os.geteuid() != 0:
            raise NamespacesUnavailable("network namespaces need root")
        if _ip("link", "show", BRIDGE, check=False).returncode == 0:
            raise NamespacesUnavailable(f"bridge {BRIDGE} exists: another run holds the subnet")
        try:
            _ip("link", "add", BRIDGE, "type", "bridge")
        except (subprocess.CalledProcessError, FileNotFoundError) as error:
            raise NamespacesUnavailable(f"cannot make a bridge: {_said(error)}") from error
        self._bridge_made = True
        _ip("addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")

    def add(self, name: str, last_octet: int, reaches: Sequence[str] | None = None) -> Host:
        """A host at 10.213.0.<last_octet>; with `reaches`, routes to those addresses only."""
        host = Host(name, f"{SUBNET_PREFIX}.{last_octet}", last_octet)
        try:
            _ip("netns", "add", host.namespace)
        except subprocess.CalledProcessError as error:
            raise NamespacesUnavailable(f"cannot make a namespace: {_said(error)}") from error
        self.hosts[name] = host
        peer = f"bf13p{last_octet}"
        _ip("link", "add", host.root_link, "type", "veth", "peer", "name", peer)
        _ip("link", "set", host.root_link, "master", BRIDGE, "up")
        _ip("link", "set", peer, "netns", host.namespace)
        inside = ("netns", "exec", host.namespace, "ip")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "link", "set", peer, "name", "eth0")
        if reaches is None:
            _ip(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip(*inside, "link", "set", "eth0", "up")
        else:
            # A lone address and a route per allowed peer: the rest of the subnet is
            # unreachable from here (ENETUNREACH), though the peers can answer.
            _ip(*inside, "addr", "add", f"{host.address}/32", "dev", "eth0")
            _ip(*inside, "link", "set", "eth0", "up")
            for address in reaches:
                _ip(*inside, "route", "add", f"{address}/32", "dev", "eth0")
        return host

    def cut(self, name: str) -> None:
        """Takes the host off the network (its veth on the bridge goes down)."""
        _ip("link", "set", self.hosts[name].root_link, "down")

    def join(self, name: str) -> None:
        """Puts a cut host back on the network."""
        _ip("link", "set", self.hosts[name].root_link, "up")

    def remove(self) -> None:
        """Deletes every namespace (their veths go with them) and the bridge; never raises."""
        for host in self.hosts.values():
            _ip("link", "del", host.root_link, check=False)
            _ip("netns", "del", host.namespace, check=False)
        self.hosts.clear()
        if self._bridge_made:
            _ip("link", "del", BRIDGE, check=False)
            self._bridge_made = False


def _said(error: BaseException) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        return (error.stderr or "").strip() or str(error)
    return str(error)
