"""Tenants' artifact byte quotas: read from the auth service, remembered for a few seconds."""

import time
from collections.abc import Callable

import grpc

from farm.auth.v1 import auth_pb2, auth_pb2_grpc
from farm_core.errors import ResourceExhausted, Unavailable
from farm_core.identity import IDENTITY_HEADER
from farm_core.transport import InternalTls, aio_channel

CALL_TIMEOUT_SECONDS = 5.0


def check_byte_quota(
    tenant: str, stored_bytes: int, upload_bytes: int, limit: int, in_flight_bytes: int = 0
) -> None:
    """Raises ResourceExhausted if `upload_bytes` more would put `tenant` over `limit` (0: none).

    `in_flight_bytes` are held by the tenant's other uploads under way.
    """
    if limit and stored_bytes + in_flight_bytes + upload_bytes > limit:
        under_way = f" and {in_flight_bytes} in uploads under way" if in_flight_bytes else ""
        raise ResourceExhausted(
            f"quota maxArtifactBytes: tenant {tenant!r} stores {stored_bytes} bytes of "
            f"artifacts{under_way}; {upload_bytes} more would pass its quota of {limit}"
        )


class TenantQuotaSource:
    """Asks the auth service (GetTenant, with storage's service credential) for a byte quota."""

    def __init__(
        self,
        auth_address: str,
        credential: str,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        tls: InternalTls | None = None,
    ) -> None:
        self._address = auth_address
        self._tls = tls
        self._credential = credential
        self._cache_seconds = cache_seconds
        self._clock = clock
        # Opened on first use, inside the server's event loop.
        self._channel: grpc.aio.Channel | None = None
        self._known: dict[str, tuple[int, float]] = {}

    async def max_artifact_bytes(self, tenant: str) -> int:
        """The tenant's byte quota in force; 0 is unlimited (also for a tenant auth lacks)."""
        known = self._known.get(tenant)
        if known is not None and known[1] > self._clock():
            return known[0]
        limit = await self._ask(tenant)
        self._known[tenant] = (limit, self._clock() + self._cache_seconds)
        return limit

    async def close(self) -> None:
        """Closes the channel to auth."""
        if self._channel is not None:
            await self._channel.close()

    async def _ask(self, tenant: str) -> int:
        if self._channel is None:
            self._channel = aio_channel(self._address, self._tls)
        stub = auth_pb2_grpc.AuthServiceStub(self._channel)
        try:
            reply: auth_pb2.Tenant = await stub.GetTenant(
                auth_pb2.GetTenantRequest(name=tenant),
                metadata=((IDENTITY_HEADER, self._credential),),
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return 0
            raise Unavailable(
                f"quota: the auth service at {self._address} did not say tenant {tenant!r}'s "
                f"quota: {error.code().name}: {error.details()}"
            ) from error
        return int(reply.effective_limits.max_artifact_bytes)
