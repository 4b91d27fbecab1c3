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

import nats.errors

from farm_core.artifact_deletions import ARTIFACTS_DELETED_SUBJECT, encode_deletion
from farm_core.errors import Unavailable
from farm_storage.nats_connection import StorageNats


class CacheEviction:
    """Storage's link to the scheduler's result cache, over storage's NATS connection."""

    def __init__(self, nats: StorageNats, timeout_seconds: float) -> None:
        self._nats = nats
        self._timeout = timeout_seconds

    async def evict(self, tenant: str, task_id: str) -> None:
        """Returns once the scheduler serves no cached result of `task_id`; else Unavailable."""
        # Waited for without stopping the connect: it goes on for the next delete.
        client = await self._nats.client(self._timeout)
        if client is None:
            raise Unavailable("NATS is not reachable; nothing was deleted, try again")
        try:
            await client.request(
                ARTIFACTS_DELETED_SUBJECT, encode_deletion(tenant, task_id), timeout=self._timeout
            )
        except (nats.errors.Error, TimeoutError) as error:
            raise Unavailable(
                f"the scheduler did not confirm dropping task {task_id}'s cached result "
                f"({type(error).__name__}); nothing was deleted, try again"
            ) from error
