"""A network allow-list: CIDRs and host names reachable despite the default deny.

By default agents (pages) and the scheduler (callbacks) refuse loopback, private,
link-local and metadata addresses; `FARM_AGENT_ALLOW` and
`FARM_SCHEDULER_CALLBACK_ALLOW` (comma-separated) open some of them, e.g.
`127.0.0.0/8,10.0.0.0/8,intranet.example`.
"""

import ipaddress
import re
from dataclasses import dataclass

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1123 labels: letters, digits and inner hyphens, 1 to 63 characters.
_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class AllowList:
    """Networks and host names that may be reached even though the default policy denies them."""

    networks: tuple[IpNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> "AllowList":
        """Parses comma-separated CIDRs, addresses and host names; ValueError names bad entries."""
        networks: list[IpNetwork] = []
        hosts: set[str] = set()
        problems: list[str] = []
        for raw_entry in text.split(","):
            entry = raw_entry.strip()
            if not entry:
                continue
            network = _parse_network(entry)
            if network is not None:
                networks.append(network)
            elif _looks_like_address(entry):
                problems.append(f"{entry!r} is not a valid CIDR or IP address")
            elif _is_host_name(entry):
                hosts.add(entry.lower().rstrip("."))
            else:
                problems.append(f"{entry!r} is neither a CIDR nor a host name")
        if problems:
            raise ValueError("; ".join(problems))
        return cls(networks=tuple(networks), hosts=frozenset(hosts))

    def allows_address(self, address: IpAddress) -> bool:
        """Whether `address` lies in one of the allowed networks."""
        return any(address.version == net.version and address in net for net in self.networks)

    def allows_host(self, host: str) -> bool:
        """Whether `host` is one of the allowed host names (case-insensitive)."""
        return host.lower().rstrip(".") in self.hosts

    def __str__(self) -> str:
        entries = [str(net) for net in self.networks] + sorted(self.hosts)
        return ",".join(entries) if entries else "(nothing)"


def allow_list_setting(value: object, setting: str) -> object:
    """A pydantic "before" validator's work: text parsed as an AllowList, naming `setting`."""
    if not isinstance(value, str):
        return value
    try:
        return AllowList.parse(value)
    except ValueError as error:
        raise ValueError(f"{setting}: {error}") from error


def _parse_network(entry: str) -> IpNetwork | None:
    try:
        # strict=False accepts "10.1.2.3/8" as 10.0.0.0/8, as people write it.
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def _looks_like_address(entry: str) -> bool:
    """Whether the entry was meant as an address or CIDR (digits and dots, a colon or a slash)."""
    return "/" in entry or ":" in entry or re.fullmatch(r"[0-9.]+", entry) is not None


def _is_host_name(entry: str) -> bool:
    name = entry.lower().rstrip(".")
    if not name or len(name) > 253:
        return False
    return all(_HOST_LABEL.match(label) for label in name.split("."))
