"""Which addresses a page may reach: deny loopback, private, link-local, metadata and farm ports.

Pure decisions on already resolved addresses; the egress proxy resolves a host once,
asks this module about every address, and connects only to an address it allowed.
"""

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from farm_core.egress.allowlist import AllowList, IpAddress, IpNetwork

NATS_PORT = 4222
"""NATS's port where a NATS_URL names none."""

ALLOWED_SCHEMES = frozenset({"http", "https", "ws", "wss"})
"""Schemes a page may use: web pages and WebSockets; everything else is refused."""


class Reason(StrEnum):
    """Why a request was refused; the values are the metric's `reason` label."""

    SCHEME = "scheme"
    FARM_SERVICE = "farm_service"
    METADATA = "metadata"
    LOOPBACK = "loopback"
    UNSPECIFIED = "unspecified"
    LINK_LOCAL = "link_local"
    PRIVATE = "private"
    MULTICAST = "multicast"
    RESERVED = "reserved"


_WHAT: dict[Reason, str] = {
    Reason.METADATA: "a cloud metadata address",
    Reason.LOOPBACK: "a loopback address",
    Reason.UNSPECIFIED: "an unspecified address",
    Reason.LINK_LOCAL: "a link-local address",
    Reason.PRIVATE: "a private address",
    Reason.MULTICAST: "a multicast address",
    Reason.RESERVED: "a reserved (special-purpose) address",
}

# Checked in this order, so that 169.254.169.254 is named metadata rather than link-local.
DENIED_NETWORKS: tuple[tuple[IpNetwork, Reason], ...] = tuple(
    (ipaddress.ip_network(cidr), reason)
    for cidr, reason in (
        ("169.254.169.254/32", Reason.METADATA),
        ("fd00:ec2::254/128", Reason.METADATA),
        ("127.0.0.0/8", Reason.LOOPBACK),
        ("::1/128", Reason.LOOPBACK),
        ("0.0.0.0/8", Reason.UNSPECIFIED),
        ("::/128", Reason.UNSPECIFIED),
        ("169.254.0.0/16", Reason.LINK_LOCAL),
        ("fe80::/10", Reason.LINK_LOCAL),
        ("10.0.0.0/8", Reason.PRIVATE),
        ("172.16.0.0/12", Reason.PRIVATE),
        ("192.168.0.0/16", Reason.PRIVATE),
        ("100.64.0.0/10", Reason.PRIVATE),
        ("fc00::/7", Reason.PRIVATE),
        ("fec0::/10", Reason.PRIVATE),
        ("224.0.0.0/4", Reason.MULTICAST),
        ("ff00::/8", Reason.MULTICAST),
    )
)

# IPv6 forms that carry an IPv4 address a connection may end up at.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class Refusal:
    """A refused request: the host asked for, the address refused and why."""

    host: str
    address: str
    reason: Reason

    def describe(self, allow_setting: str = "FARM_AGENT_ALLOW") -> str:
        """A sentence naming the host, the address and the reason, e.g. for a task's error.

        `allow_setting` is the allow-list setting named as what can open the address.
        """
        if self.reason is Reason.SCHEME:
            return f"the scheme {self.address!r} is refused; only http, https, ws and wss"
        if self.reason is Reason.FARM_SERVICE:
            what = f"one of the farm's own services; {allow_setting} cannot open it"
        else:
            what = f"{_WHAT[self.reason]}; {allow_setting} can open it"
        if _is_address(self.host.strip("[]")):
            return f"{self.address} is {what}"
        return f"{self.host} resolves to {self.address}, {what}"


@dataclass(frozen=True)
class FarmService:
    """A host:port the farm itself listens on; an unspecified host means every address."""

    host: str
    port: int

    @classmethod
    def parse(cls, text: str, default_port: int | None = None) -> "FarmService":
        """Parses "host:port", "[v6]:port" or a URL such as "nats://host:4222"."""
        _, _, rest = text.strip().rpartition("://")
        rest = rest.rsplit("@", 1)[-1].split("/", 1)[0]
        host, separator, port = rest.rpartition(":")
        if default_port is not None and (not separator or host.endswith(":") or "]" in port):
            host, port = rest, str(default_port)
        if not port.isdigit() or not host:
            raise ValueError(f"{text!r} is not host:port")
        return cls(host.strip("[]").lower().rstrip("."), int(port))

    @classmethod
    def parse_list(cls, text: str, default_port: int | None = None) -> list["FarmService"]:
        """Parses comma-separated entries as `parse` does; empty entries are skipped."""
        return [cls.parse(entry, default_port) for entry in text.split(",") if entry.strip()]

    @classmethod
    def checked_setting(cls, text: str, setting: str) -> str:
        """`text` unchanged if `parse_list` takes it; else ValueError naming `setting`."""
        try:
            cls.parse_list(text)
        except ValueError as error:
            raise ValueError(f"{setting}: {error}") from error
        return text

    @classmethod
    def of_farm(
        cls, host: str, ports: Iterable[int], nats_url: str, others: str
    ) -> list["FarmService"]:
        """A service's own ports on `host` (0s skipped), NATS's servers and `others`."""
        return [
            *(cls(host, port) for port in ports if port),
            *cls.parse_list(nats_url, default_port=NATS_PORT),
            *cls.parse_list(others),
        ]


@dataclass(frozen=True)
class AddressPolicy:
    """Deny by default for non-global addresses, the allow-list opens some, farm ports never."""

    allow: AllowList = field(default_factory=AllowList)
    # The farm's services by name and by every address they resolved to.
    farm_services: frozenset[FarmService] = frozenset()
    farm_addresses: frozenset[tuple[IpAddress, int]] = frozenset()
    # Ports the farm listens on at every address of this machine (bound to 0.0.0.0 or ::).
    farm_ports_everywhere: frozenset[int] = frozenset()

    def check_scheme(self, url_host: str, scheme: str) -> Refusal | None:
        """Refuses schemes other than http, https, ws and wss."""
        if scheme.lower() in ALLOWED_SCHEMES:
            return None
        return Refusal(url_host, scheme, Reason.SCHEME)

    def check(self, host: str, port: int, addresses: Sequence[IpAddress]) -> Refusal | None:
        """The first refusal among `host`'s resolved `addresses` on `port`; None: all allowed."""
        name = host.lower().rstrip(".").strip("[]")
        if FarmService(name, port) in self.farm_services:
            return Refusal(host, f"{name}:{port}", Reason.FARM_SERVICE)
        for address in addresses:
            refusal = self._check_one(name, port, address)
            if refusal is not None:
                return Refusal(host, refusal.address, refusal.reason)
        return None

    def _check_one(self, host: str, port: int, address: IpAddress) -> Refusal | None:
        mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
        # A mapped address is the IPv4 one; other IPv6 forms count as themselves and as it.
        forms: list[IpAddress] = [mapped] if mapped else [address, *embedded_ipv4(address)]
        if port in self.farm_ports_everywhere or any(
            (form, port) in self.farm_addresses for form in (address, *forms)
        ):
            text = f"[{shown(address)}]" if address.version == 6 else str(address)
            return Refusal(host, f"{text}:{port}", Reason.FARM_SERVICE)
        if self.allow.allows_host(host) or any(self.allow.allows_address(form) for form in forms):
            return None
        for form in forms:
            reason = denied_reason(form)
            if reason is not None:
                return Refusal(host, shown(address), reason)
        return None


def shown(address: IpAddress) -> str:
    """The address as people write it: an IPv4-mapped one as ::ffff:a.b.c.d."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return f"::ffff:{mapped}" if mapped is not None else str(address)


def denied_reason(address: IpAddress) -> Reason | None:
    """Why the default policy denies `address` itself (no embedded forms); None if global."""
    for network, reason in DENIED_NETWORKS:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return Reason.RESERVED
    return None


def embedded_ipv4(address: IpAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address stands for: mapped (::ffff:a.b.c.d), 6to4, NAT64."""
    if not isinstance(address, ipaddress.IPv6Address):
        return []
    found = [
        embedded for embedded in (address.ipv4_mapped, address.sixtofour) if embedded is not None
    ]
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return found


def farm_addresses_of(
    services: Iterable[FarmService], resolved: dict[FarmService, Sequence[IpAddress]]
) -> tuple[frozenset[tuple[IpAddress, int]], frozenset[int]]:
    """The (address, port) pairs of the farm's services, and ports bound on every address."""
    pairs: set[tuple[IpAddress, int]] = set()
    everywhere: set[int] = set()
    for service in services:
        for address in resolved.get(service, ()):
            if address.is_unspecified:
                everywhere.add(service.port)
            pairs.add((address, service.port))
    return frozenset(pairs), frozenset(everywhere)


def _is_address(host: str) -> bool:
    """Whether `host` is an IP address literal (in any form Python reads) rather than a name."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
