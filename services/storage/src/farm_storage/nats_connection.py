"""Storage's one NATS connection, made in the background at start and shared by its parts.

The cache eviction (a request the scheduler answers) and the ended-task check (the
scheduler's key-value bucket) both use it. It is tried until NATS answers, so
storage serves without NATS meanwhile, and once made reconnects by itself after an
outage (farm_core.queue.connect).
"""

import asyncio

from nats.aio.client import Client
from nats.js import JetStreamContext

from farm_core.cancel import cancel_and_wait
from farm_core.nats_access import NatsAccess
from farm_core.nats_link import NatsLink

CONNECTION_NAME = "farm-storage"


async def _jetstream(js: JetStreamContext) -> JetStreamContext:
    return js


class StorageNats:
    """The connection its parts share: `start` once, then `client` or `jetstream`."""

    def __init__(self, access: NatsAccess) -> None:
        self._link = NatsLink(access, CONNECTION_NAME)
        self._connecting: asyncio.Task[JetStreamContext] | None = None

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
        return self._link.is_connected

    def start(self) -> None:
        """Begins connecting (retrying until NATS answers)."""
        if self._connecting is None:
            self._connecting = asyncio.create_task(
                self._link.open(_jetstream), name="storage-nats-connect"
            )

    async def jetstream(self) -> JetStreamContext:
        """JetStream on the connection, once it is made."""
        # Shielded: a part that stops waiting does not stop the connect for the others.
        return await asyncio.shield(self._started())

    async def client(self, timeout_seconds: float) -> Client | None:
        """The connection, waited for at most `timeout_seconds`; None if not made by then."""
        connecting = self._started()
        await asyncio.wait({connecting}, timeout=timeout_seconds)
        return self._link.client if connecting.done() and not connecting.cancelled() else None

    async def close(self) -> None:
        """Stops connecting, or closes the connection."""
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            await cancel_and_wait(connecting, "the storage's NATS connect")
        await self._link.close()

    def _started(self) -> "asyncio.Task[JetStreamContext]":
        if self._connecting is None:
            raise RuntimeError("StorageNats.start() comes before its use")
        return self._connecting
