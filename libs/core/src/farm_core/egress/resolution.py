"""How the address policy learns addresses: the system resolver, and the farm's own services.

The agent's egress proxy and the scheduler's callback sender resolve each host once
and check every address they got; the policy needs the addresses of the farm's
services resolved at start, so that a page or a callback cannot reach them by
another name.
"""

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence

from farm_core.egress.address_policy import AddressPolicy, FarmService, farm_addresses_of
from farm_core.egress.allowlist import AllowList, IpAddress

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[IpAddress]]]
"""Resolves a host name (or an address literal) to the addresses a connection may use."""


async def system_resolver(host: str, port: int) -> list[IpAddress]:
    """The host's addresses from the system resolver, or the address itself for a literal."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IpAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # A scoped IPv6 address ("fe80::1%eth0") keeps its scope out of the check.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


# getaddrinfo's answers that a name has no address at all (NXDOMAIN, or no A/AAAA
# record): final, unlike EAI_AGAIN (a resolver that failed or timed out: SERVFAIL).
_NO_SUCH_NAME = frozenset(
    number
    for number in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if number is not None
)


def name_does_not_exist(error: BaseException) -> bool:
    """Whether a resolver's `error` says the name has no address, so no retry would find one.

    A name that cannot be one (a label over 63 characters, no IDNA form) counts;
    a resolver's failure or timeout does not.
    """
    if isinstance(error, UnicodeError):
        return True
    return isinstance(error, socket.gaierror) and error.errno in _NO_SUCH_NAME


async def farm_policy(
    allow: AllowList,
    services: Sequence[FarmService],
    resolver: Resolver = system_resolver,
    timeout_seconds: float = 10.0,
) -> AddressPolicy:
    """The policy for `allow`, with the farm's services resolved to the addresses they use."""
    resolved: dict[FarmService, Sequence[IpAddress]] = {}
    for service in services:
        try:
            resolved[service] = await asyncio.wait_for(
                resolver(service.host, service.port), timeout_seconds
            )
        except (OSError, UnicodeError, TimeoutError) as error:
            # Still refused by name; its addresses are refused by the default deny unless allowed.
            log.warning("cannot resolve the farm's service %s: %s", service.host, error)
    addresses, everywhere = farm_addresses_of(services, resolved)
    return AddressPolicy(allow, frozenset(services), addresses, everywhere)
