"""Deletes ended tasks and closed sessions past FARM_SCHEDULER_TASK_RETENTION_DAYS, hourly.

Each batch (one short transaction, so a backlog never holds a long one nor locks
SQLite for long): the tasks that may go (retention_rows), then storage deletes the
artifacts they own and confirms (farm_core.artifact_expiry), then their rows and
attempts go. Should storage not confirm, the rows stay and the pass ends: the next
pass asks again, and collects whatever the failed one left in S3. Replicas may sweep
at the same time: every step is idempotent, and a row is counted by the replica
whose DELETE removed it.
"""

import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from farm_core.artifact_expiry import (
    ARTIFACTS_EXPIRE_SUBJECT,
    ArtifactOwner,
    decode_answer,
    encode_expiry,
)
from farm_core.db import utcnow
from farm_core.periodic import Periodic
from farm_core.retention import Clock, retention_cutoff, retention_loop
from farm_core.task_limits import MAX_CACHE_TTL_SECONDS
from farm_scheduler.retention_rows import (
    Expired,
    delete_sessions,
    delete_tasks,
    expired_sessions,
    expired_tasks,
)

log = logging.getLogger(__name__)

CACHE_REACH = dt.timedelta(seconds=MAX_CACHE_TTL_SECONDS, hours=1)
"""How long after it ended a task's result may still answer a new task from the cache
(the longest cacheTtlSeconds, and an hour for the replicas' clocks to differ)."""

REQUEUE_MARGIN = dt.timedelta(hours=1)
"""How long before its retention ends a dead letter may no longer be requeued: a sweep
may have chosen it and be deleting its artifacts (an hour for the replicas' clocks)."""


def requeueable_since(retention_days: int, now: dt.datetime) -> dt.datetime | None:
    """The earliest end time of a dead letter that may still be requeued; None: any may.

    An older one is (nearly) past retention: a sweep may be deleting its artifacts,
    with those a requeued run would upload meanwhile, and then keep the requeued task.
    """
    if not retention_days:
        return None
    return retention_cutoff(retention_days, lambda: now) + REQUEUE_MARGIN


tasks_deleted = Counter(
    "farm_tasks_deleted_total",
    "Ended tasks deleted (with their attempts) past FARM_SCHEDULER_TASK_RETENTION_DAYS.",
)
sessions_deleted = Counter(
    "farm_sessions_deleted_total",
    "Closed sessions deleted past FARM_SCHEDULER_TASK_RETENTION_DAYS.",
)

batches_kept = Counter(
    "farm_retention_batches_kept_total",
    "Retention batches kept, and their pass ended, because storage did not confirm deleting "
    "their artifacts (no storage replica answered in time, or it answered a failure).",
)


class StorageUnconfirmed(Exception):
    """Storage did not confirm deleting a batch's artifacts: the batch is kept for next time."""


@dataclass(frozen=True)
class Swept:
    """What one pass deleted."""

    tasks: int = 0
    sessions: int = 0


class TaskRetention:
    """The retention sweep of one scheduler replica: `start` its hourly loop, or `purge` once."""

    def __init__(
        self,
        engine: AsyncEngine,
        nc: Client,
        retention_days: int,
        batch_size: int,
        storage_timeout_seconds: float,
        clock: Clock = utcnow,
    ) -> None:
        self._engine = engine
        self._nc = nc
        self._batch_size = batch_size
        self._storage_timeout = storage_timeout_seconds
        self._retention = dt.timedelta(days=retention_days)
        self._loop: Periodic | None = retention_loop(
            "scheduler-retention",
            self.purge,
            retention_days,
            survives=(SQLAlchemyError, OSError, StorageUnconfirmed),
            clock=clock,
        )

    def start(self) -> None:
        """Starts the hourly loop (none when retention is 0: everything is kept)."""
        if self._loop is not None:
            self._loop.start()

    async def stop(self) -> None:
        """Stops the loop after the batch in progress, if any."""
        if self._loop is not None:
            await self._loop.stop()

    async def purge(self, cutoff: dt.datetime) -> Swept:
        """Deletes, batch after batch, what ended before `cutoff` and may go; what went."""
        cache_cutoff = cutoff + self._retention - CACHE_REACH
        swept_tasks = await self._batches(
            lambda c: expired_tasks(c, cutoff, cache_cutoff, self._batch_size),
            lambda c, ids: delete_tasks(c, ids, cutoff),
        )
        tasks_deleted.inc(swept_tasks)
        swept_sessions = await self._batches(
            lambda c: expired_sessions(c, cutoff, self._batch_size),
            lambda c, ids: delete_sessions(c, ids, cutoff),
        )
        sessions_deleted.inc(swept_sessions)
        if swept_tasks or swept_sessions:
            log.info(
                "deleted %d task(s) and %d session(s) that ended before %s",
                swept_tasks,
                swept_sessions,
                cutoff.isoformat(),
            )
        return Swept(swept_tasks, swept_sessions)

    async def _batches(
        self,
        find: Callable[[AsyncConnection], Awaitable[list[Expired]]],
        remove: Callable[[AsyncConnection, Sequence[str]], Awaitable[int]],
    ) -> int:
        deleted = 0
        while self._loop is None or not self._loop.stopping:
            async with self._engine.connect() as connection:
                batch = await find(connection)
            if not batch:
                break
            await self._expire_artifacts(
                [ArtifactOwner(e.tenant, e.id) for e in batch if e.owns_artifacts]
            )
            async with self._engine.begin() as connection:
                removed = await remove(connection, [e.id for e in batch])
            deleted += removed
            # Not `len(batch) < batch size`: deleting a cached task may free its source,
            # which the next query finds. A batch another replica took counts 0: stop.
            if not removed:
                break
        return deleted

    async def _expire_artifacts(self, owners: Sequence[ArtifactOwner]) -> None:
        if not owners:
            return
        try:
            reply = await self._nc.request(
                ARTIFACTS_EXPIRE_SUBJECT, encode_expiry(owners), timeout=self._storage_timeout
            )
            decode_answer(reply.data)
        except (nats.errors.Error, TimeoutError, ValueError) as error:
            batches_kept.inc()
            raise StorageUnconfirmed(
                f"storage did not confirm deleting the artifacts of {len(owners)} task(s) or "
                f"session(s) ({type(error).__name__}: {error}); they are kept until the next pass"
            ) from error
