"""Has the scheduler drop the cached result of a task before one of its artifacts is deleted.

A cache hit hands out an earlier task's result by reference, artifact ids and all
(docs/api.md "Result cache"). Deleting one of those artifacts must first stop the
cache from serving that result, or a later hit names an artifact that is gone.
The eviction is a core NATS request that a scheduler replica answers once it has
cleared the task's cache key in SQL; storage commits the delete only after that
answer, so a delete that succeeds never leaves a cached result behind. Without an
answer (NATS or every scheduler down) the delete fails as UNAVAILABLE and nothing
is deleted: the caller retries.
"""

import asyncio
import contextlib

import nats.errors
from nats.aio.client import Client

from farm_core.artifact_deletions import ARTIFACTS_DELETED_SUBJECT, encode_deletion
from farm_core.errors import Unavailable
from farm_core.nats_access import NatsAccess
from farm_core.queue import connect

CLOSE_WAIT_SECONDS = 2.0
"""How long close() lets a connect in progress finish, so that it can be closed cleanly."""


class CacheEviction:
    """Storage's link to the scheduler's result cache: one NATS connection, made at start."""

    def __init__(self, nats: NatsAccess, timeout_seconds: float) -> None:
        self._nats = nats
        self._timeout = timeout_seconds
        self._connecting: asyncio.Task[Client] | None = None

    def start(self) -> None:
        """Begins connecting to NATS (reconnecting for ever); storage serves meanwhile."""
        if self._connecting is None:
            self._connecting = asyncio.create_task(
                connect(self._nats, "farm-storage"), name="cache-eviction-connect"
            )

    async def evict(self, tenant: str, task_id: str) -> None:
        """Returns once the scheduler serves no cached result of `task_id`; else Unavailable."""
        client = await self._client()
        try:
            await client.request(
                ARTIFACTS_DELETED_SUBJECT, encode_deletion(tenant, task_id), timeout=self._timeout
            )
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(
                f"the scheduler did not confirm dropping task {task_id}'s cached result "
                f"({type(error).__name__}); nothing was deleted, try again"
            ) from error

    async def _client(self) -> Client:
        connecting = self._connecting
        if connecting is None:
            raise RuntimeError("CacheEviction.start() comes before evict()")
        # Waited for without cancelling it: the connect goes on for the next delete.
        await asyncio.wait({connecting}, timeout=self._timeout)
        if not connecting.done():
            raise Unavailable("NATS is not reachable; nothing was deleted, try again")
        if connecting.exception() is not None:
            self._connecting = None
            self.start()
            raise Unavailable(f"connecting to NATS failed: {connecting.exception()}")
        return connecting.result()

    async def close(self) -> None:
        """Closes the connection (or stops making it)."""
        connecting, self._connecting = self._connecting, None
        if connecting is None:
            return
        if not connecting.done():
            # A connect cut off half-way would leave its socket open: give it a moment.
            await asyncio.wait({connecting}, timeout=CLOSE_WAIT_SECONDS)
            connecting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            client = await connecting
            if not client.is_closed:
                await client.close()
