"""One callback delivery: a signed POST to an address the address policy allows.

The host is resolved once per delivery and every address it resolves to is checked
(farm_core.egress, the agents' policy for pages); the connection goes only to a
checked address, so a name that changes its answer between the check and the
connection cannot lead elsewhere. Redirects are not followed.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from farm_core.egress.address_policy import AddressPolicy, Refusal
from farm_core.egress.resolution import Resolver, name_does_not_exist, system_resolver

ALLOW_SETTING = "FARM_SCHEDULER_CALLBACK_ALLOW"
"""The setting that opens refused networks to callbacks, as refusals name it."""
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_LOCATION_CHARS = 200
"""How much of a redirect's Location an attempt's error quotes."""


@dataclass(frozen=True)
class Delivery:
    """How a delivery ended: the receiver's status (0: no answer) and the error, if any.

    A `permanent` failure (a refused address, a name that does not exist) is not retried.
    """

    http_status: int = 0
    error: str = ""
    permanent: bool = False


class NameDoesNotExist(Exception):
    """The callback's host name has no address (NXDOMAIN): no later attempt would reach it."""

    def __init__(self, host: str, error: BaseException) -> None:
        super().__init__(
            f"{host} does not resolve ({error or type(error).__name__}); "
            "the name does not exist, so it is not retried"
        )


class RefusedAddress(Exception):
    """The callback's host is, or resolves to, an address the policy refuses."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.describe(ALLOW_SETTING))
        self.refusal = refusal


def refusal_of_literal(url: str, policy: AddressPolicy) -> Refusal | None:
    """The policy's refusal of `url` when its host is an IP address; None for a name or allowed.

    Names are checked when a delivery resolves them.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 80)
    return policy.check(host, port, [address])


class _CheckedResolver(AbstractResolver):
    """aiohttp's resolver: the host's addresses, each allowed by the policy, or RefusedAddress."""

    def __init__(self, policy: AddressPolicy, resolve: Resolver) -> None:
        self._policy = policy
        self._resolve = resolve

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            addresses = await self._resolve(host, port)
        except (OSError, UnicodeError) as error:
            if name_does_not_exist(error):
                # Not an OSError, so aiohttp hands it on as it is, as RefusedAddress.
                raise NameDoesNotExist(host, error) from error
            raise
        refusal = self._policy.check(host, port, addresses)
        if refusal is not None:
            raise RefusedAddress(refusal)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


class CallbackSender:
    """Sends callbacks over one HTTP connection pool, each within `timeout_seconds`."""

    def __init__(
        self,
        policy: AddressPolicy,
        timeout_seconds: float,
        resolve: Resolver = system_resolver,
    ) -> None:
        self._policy = policy
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._resolve = resolve
        self._session: aiohttp.ClientSession | None = None

    @property
    def policy(self) -> AddressPolicy:
        """What the sender may reach."""
        return self._policy

    async def send(self, url: str, body: bytes, headers: dict[str, str]) -> Delivery:
        """POSTs `body` to `url`; delivered on a 2xx answer."""
        refusal = refusal_of_literal(url, self._policy)
        if refusal is not None:
            return Delivery(error=refusal.describe(ALLOW_SETTING), permanent=True)
        try:
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                location = response.headers.get("Location", "")
        except (RefusedAddress, NameDoesNotExist) as refused:
            return Delivery(error=str(refused), permanent=True)
        except TimeoutError:
            return Delivery(error=f"no answer within {self._timeout.total:g} s")
        except aiohttp.ClientError as error:
            return Delivery(error=f"{type(error).__name__}: {error}")
        if 200 <= status < 300:
            return Delivery(http_status=status)
        if 300 <= status < 400:
            # Said outright: a 3xx alone reads like the receiver's fault, not the URL's.
            where = f" to {location[:MAX_LOCATION_CHARS]}" if location else ""
            return Delivery(
                http_status=status,
                error=f"the receiver answered HTTP {status}, a redirect{where}, which "
                "callbacks do not follow: give the final URL as callbackUrl",
            )
        return Delivery(http_status=status, error=f"the receiver answered HTTP {status}")

    async def close(self) -> None:
        """Closes the connection pool."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=_CheckedResolver(self._policy, self._resolve), use_dns_cache=False
            )
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session
