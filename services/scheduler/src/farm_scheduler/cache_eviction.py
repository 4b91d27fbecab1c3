"""Drops a task's result from the result cache when storage is about to delete one of its artifacts.

Storage asks on the core NATS subject `artifacts.deleted` (farm_core.artifact_deletions)
inside its delete's transaction; one replica (a queue group) clears the task's
cache key in SQL and answers, and only then does storage delete. The cache's
lookup (task_rows._LATEST_CACHED_RESULT) skips a task without a key, so no later
hit names the deleted artifact. The Bloom filter (cached_keys.py) may still say
the pair may have a result: that only costs the lookup.
"""

import logging

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from farm_core.artifact_deletions import ARTIFACTS_DELETED_SUBJECT, decode_deletion
from farm_scheduler.models import HAS_CACHE_KEY
from farm_scheduler.task_rows import tasks

log = logging.getLogger(__name__)

QUEUE_GROUP = "farm-scheduler"
"""Each request is answered by one replica: the cache is in the SQL they share."""


class CacheEviction:
    """Answers storage's artifact deletions by clearing the task's result cache key."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._subscription: Subscription | None = None

    async def start(self, nc: Client) -> None:
        """Answers deletions from now on."""
        self._subscription = await nc.subscribe(
            ARTIFACTS_DELETED_SUBJECT, queue=QUEUE_GROUP, cb=self._heard
        )

    async def stop(self) -> None:
        """Answers no more: storage's deletes then fail (UNAVAILABLE) until another replica does."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except nats.errors.Error as error:
                log.warning("unsubscribing from artifact deletions failed: %s", error)

    async def evict(self, tenant: str, task_id: str) -> None:
        """Stops the task `task_id` of `tenant` from answering the cache (no task: nothing)."""
        statement = (
            update(tasks)
            .where(tasks.c.id == task_id, tasks.c.tenant == tenant, HAS_CACHE_KEY)
            .values(cache_key="")
        )
        async with self._engine.begin() as connection:
            await connection.execute(statement)

    async def _heard(self, message: Msg) -> None:
        try:
            tenant, task_id = decode_deletion(message.data)
        except ValueError as error:
            log.warning("ignoring a malformed artifact deletion: %s", error)
            return
        try:
            await self.evict(tenant, task_id)
        except Exception:
            # Unanswered, storage's delete fails and deletes nothing: the cache stays right.
            log.exception("dropping task %s's cached result failed", task_id)
            return
        if message.reply:
            await message.respond(b"")
