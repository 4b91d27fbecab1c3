"""A NATS connection made in the background, retried until it works, closable mid-connect."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.aio.client import Client
from nats.js import JetStreamContext

from farm_core.cancel import cancel_and_wait
from farm_core.nats_access import NatsAccess
from farm_core.queue import connect

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
# How long a close waits for a connect in progress, so its socket can be closed.
CONNECT_WAIT_SECONDS = 0.05

Prepared = TypeVar("Prepared")


class NatsLink:
    """One NATS connection for a background task (audit publisher, audit writer).

    `open` retries until NATS answers, so a part starts without NATS; `close`
    closes the connection, including one still being made when the task stopped;
    `reconnected` is called each time the connection is back after an outage.
    """

    def __init__(
        self, access: NatsAccess, name: str, reconnected: Callable[[], None] | None = None
    ) -> None:
        self._access = access
        self._name = name
        self._reconnected = reconnected
        self._nc: Client | None = None
        self._connecting: asyncio.Future[Client] | None = None

    @property
    def is_connected(self) -> bool:
        """Whether the connection is up now."""
        return self._nc is not None and self._nc.is_connected

    def jetstream(self) -> JetStreamContext | None:
        """JetStream on the connection, None before it is made or after it closed."""
        return self._nc.jetstream() if self._nc is not None and not self._nc.is_closed else None

    async def open(self, prepare: Callable[[JetStreamContext], Awaitable[Prepared]]) -> Prepared:
        """Connects and runs `prepare` (streams, consumers) on JetStream, retrying both."""
        while True:
            try:
                # Shielded: a connect cut off half-way would leave its socket open;
                # close() waits for it instead.
                self._connecting = asyncio.ensure_future(
                    connect(self._access, self._name, self._reconnected)
                )
                self._nc = await asyncio.shield(self._connecting)
                return await prepare(self._nc.jetstream())
            except Exception as error:  # any failure means: try again later
                log.warning("%s: NATS not ready (%s); retrying", self._name, error)
                if self._nc is not None:
                    await self._nc.close()
                    self._nc = None
                await asyncio.sleep(RETRY_SECONDS)

    async def close(self, grace_seconds: float = CONNECT_WAIT_SECONDS) -> None:
        """Closes the connection; a connect in progress gets a moment to finish first."""
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            if not connecting.done():
                await asyncio.wait({connecting}, timeout=min(grace_seconds, CONNECT_WAIT_SECONDS))
            await cancel_and_wait(connecting, f"the NATS connect of {self._name}")
            if not connecting.cancelled() and connecting.exception() is None:
                self._nc = connecting.result()
        if self._nc is not None and not self._nc.is_closed:
            await self._nc.close()
        self._nc = None
