"""Fails the tasks still queued at their deadline, so that no agent starts them late."""

import logging
from collections.abc import Awaitable, Callable

from farm_core import task_ends
from farm_core.db import utcnow
from farm_core.periodic import Periodic
from farm_scheduler.publisher import ROUND_ERRORS, TaskPublisher
from farm_scheduler.store import TaskChange, TaskStore

log = logging.getLogger(__name__)

SWEEP_BATCH = 100


class DeadlineSweeper:
    """Every `interval_seconds`, fails the QUEUED tasks whose deadline has passed.

    Each becomes FAILED with DEADLINE_EXCEEDED and is marked ended (`end_marks`),
    which agents read before they start a task and storage before it stores; its
    WorkItem is deleted from the stream (`queue_messages`).
    Replicas may sweep at the same time: a task changes once, whoever gets there first.
    """

    def __init__(
        self,
        store: TaskStore,
        publisher: TaskPublisher,
        on_change: Callable[[TaskChange], Awaitable[None]],
        interval_seconds: float,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._on_change = on_change
        self._loop = Periodic(
            "scheduler-deadlines", self._round, interval_seconds, survives=ROUND_ERRORS
        )

    def start(self) -> None:
        """Starts the background loop."""
        self._loop.start()

    async def stop(self) -> None:
        """Stops the loop after the round in progress, if any."""
        await self._loop.stop()

    async def sweep(self) -> int:
        """Fails up to SWEEP_BATCH overdue tasks; how many were failed."""
        now = utcnow()
        expired = 0
        for task_id in await self._store.overdue(now, SWEEP_BATCH):
            if self._loop.stopping:
                break
            change = await self._store.expire(task_id, now)
            if change is None:
                continue  # It started or ended in the meantime.
            reason = task_ends.failed(change.after.state.error_code)
            await self._publisher.end_marks.mark(task_id, reason)
            await self._publisher.queue_messages.ended(change.before)
            await self._on_change(change)
            expired += 1
        if expired:
            log.info("failed %d task(s) still queued at their deadline", expired)
        return expired

    async def _round(self) -> None:
        # A full batch may mean more are waiting; the loop is bounded by the backlog.
        while await self.sweep() == SWEEP_BATCH and not self._loop.stopping:
            pass
