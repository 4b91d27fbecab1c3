"""Serialises one tenant's quota checks, so that a count and the write after it cannot race.

On PostgreSQL a transaction-scoped advisory lock keyed by the tenant, which holds
across replicas and ends with the transaction. On SQLite, which has one writer per
file and one service process per file, an in-process lock per tenant. The scheduler
uses them for task quotas, storage for byte quotas, each through a TenantQuotaLock.
"""

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# Advisory lock keys are shared by everything in one PostgreSQL database: the
# first key names this use, the second the tenant.
ADVISORY_NAMESPACE = 0x46514C4B  # "FQLK": the scheduler's task quotas
BYTES_NAMESPACE = 0x4642514B  # "FBQK": storage's byte quotas
# Keyed by a task id, not a tenant: storage's check that an upload's attempt is the
# task's latest (farm_storage.attempts) and the write after it.
ATTEMPTS_NAMESPACE = 0x46415454  # "FATT"


def advisory_key(tenant: str) -> int:
    """The tenant's advisory lock key: a stable signed 32-bit hash of its name."""
    digest = hashlib.sha256(tenant.encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


async def lock_tenant_in_transaction(
    connection: AsyncConnection, tenant: str, namespace: int = ADVISORY_NAMESPACE
) -> None:
    """On PostgreSQL, waits for and takes the tenant's lock until the transaction ends.

    `namespace` keeps apart the locks of different quotas (services may share a database).
    """
    if connection.dialect.name == "postgresql":
        await connection.execute(
            select(func.pg_advisory_xact_lock(namespace, advisory_key(tenant)))
        )


@dataclass
class _Held:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class TenantLocks:
    """In-process locks by tenant, each kept only while a create holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[str, _Held] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, tenant: str) -> AsyncIterator[None]:
        """Holds the tenant's lock for the block."""
        held = self._locks.setdefault(tenant, _Held())
        held.users += 1
        try:
            async with held.lock:
                yield
        finally:
            held.users -= 1
            if held.users == 0:
                del self._locks[tenant]


class TenantQuotaLock:
    """Transactions that hold a tenant's lock in one database, whichever its dialect."""

    def __init__(self, engine: AsyncEngine, namespace: int) -> None:
        self._engine = engine
        self._namespace = namespace
        self._local = TenantLocks() if engine.dialect.name == "sqlite" else None

    @contextlib.asynccontextmanager
    async def transaction(self, tenant: str) -> AsyncIterator[AsyncConnection]:
        """A transaction that holds `tenant`'s lock from its start to its end."""
        async with contextlib.AsyncExitStack() as stack:
            if self._local is not None:
                await stack.enter_async_context(self._local.hold(tenant))
            connection = await stack.enter_async_context(self._engine.begin())
            await lock_tenant_in_transaction(connection, tenant, self._namespace)
            yield connection
