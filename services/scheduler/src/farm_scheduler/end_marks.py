"""Marks the tasks that end while work on them may still be out there, for agents and storage.

A cancelled task, and one failed by a delivery that never started it (its attempts
used up or its deadline passed, while an earlier, cut-off attempt may still run),
is put in the bucket CANCEL_BUCKET with the reason (`farm_core.task_ends`), and a
cancel notice stops an attempt still running where the notice reaches it. A task
that ends by its own attempt's report is not marked (that attempt is done) unless
the attempt's message was delivered again meanwhile (`AgentEvent.redelivered`, or
its final event reached JetStream late: farm_scheduler.events): the redelivery,
waiting while the attempt ran (farm_agent.work.holders), is acked unrun.

A mark NATS did not take is kept in SQL (`pending_end_marks`, the latest order for
a task replacing an earlier one) and written by the republisher's rounds
(`retry_pending`), by whichever replica runs one, also after a restart: until then
an agent would run the task's queued message. The task's end stands in the
database either way.
"""

import logging
from collections.abc import Collection
from typing import cast

import nats.errors
from nats.aio.client import Client
from nats.js.kv import KeyValue
from sqlalchemy import RowMapping, Table, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.queue.v1 import queue_pb2
from farm_core import task_ends
from farm_core.queue import cancel_subject
from farm_scheduler.models import PendingEndMarkRow
from farm_scheduler.retry_outbox import Kept, RetryOutbox

log = logging.getLogger(__name__)

pending_marks = cast(Table, PendingEndMarkRow.__table__)


class EndMarks:
    """Writes and withdraws the marks of ended tasks; keeps the ones NATS refused in SQL."""

    def __init__(self, nc: Client, ended_tasks: KeyValue, engine: AsyncEngine) -> None:
        self._nc = nc
        self._ended_tasks = ended_tasks
        self._engine = engine
        # A newer order kept for the task meanwhile has another try_time: a retry leaves it.
        self._kept = RetryOutbox(engine, pending_marks, identity=("task_id", "try_time"))

    async def mark(self, task_id: str, reason: str) -> None:
        """Marks the task ended for `reason` and tells a running attempt to stop."""
        if not self._nc.is_connected:
            # A request now would wait for the reconnect, holding up the caller.
            log.warning("NATS is unreachable: task %s is marked ended (%s) later", task_id, reason)
            await self._keep(task_id, reason)
            return
        try:
            await self._put(task_id, reason)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("marking task %s ended (%s) failed: %s; retrying", task_id, reason, error)
            await self._keep(task_id, reason)
            return
        await self._settle(task_id)

    async def withdraw(self, task_id: str) -> bool:
        """Removes the task's mark (it is queued again); False if kept for a retry.

        Until the withdrawal goes through, the task must not be published: agents
        would ack it unrun (`withdrawing`).
        """
        try:
            await self._ended_tasks.delete(task_id)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("withdrawing the end mark of task %s failed: %s; retrying", task_id, error)
            await self._keep(task_id, None)
            return False
        await self._settle(task_id)
        return True

    async def withdrawing(self, task_ids: Collection[str]) -> set[str]:
        """Those of `task_ids` whose mark is still to be withdrawn."""
        if not task_ids:
            return set()
        query = select(pending_marks.c.task_id).where(
            pending_marks.c.task_id.in_(task_ids), pending_marks.c.reason.is_(None)
        )
        async with self._engine.connect() as connection:
            return set((await connection.execute(query)).scalars())

    async def retry_pending(self) -> int:
        """Tries up to a batch of kept orders again, least lately tried first; how many went.

        A round stops at the first that fails again (NATS is still away), which goes
        to the back (`retry_outbox`).
        """
        if not self._nc.is_connected:
            return 0
        done = await self._kept.retry(self._retry)
        if done:
            log.info("marked %d ended task(s) held back while NATS was unreachable", done)
        return done

    async def _retry(self, row: RowMapping) -> bool:
        """Makes a kept order again; False if NATS did not take it."""
        task_id, reason = row["task_id"], row["reason"]
        try:
            if reason is None:
                await self._ended_tasks.delete(task_id)
            else:
                await self._put(task_id, reason)
        except (nats.errors.Error, TimeoutError) as error:
            log.warning("marking task %s ended failed again: %s", task_id, error)
            return False
        return True

    async def _put(self, task_id: str, reason: str) -> None:
        await self._ended_tasks.put(task_id, task_ends.mark(reason))
        await self._nc.publish(
            cancel_subject(task_id), queue_pb2.CancelNotice(task_id=task_id).SerializeToString()
        )

    async def _keep(self, task_id: str, reason: str | None) -> None:
        """Keeps the order for retry_pending, replacing an earlier one for the task."""
        row = {"task_id": task_id, "reason": reason}
        try:
            kept = await self._kept.keep(row, replacing=pending_marks.c.task_id == task_id)
        except (SQLAlchemyError, OSError) as error:
            log.error("keeping the end mark of task %s for a retry failed: %s", task_id, error)
            return
        if kept is Kept.CLASHED:
            log.warning("another replica kept an order for task %s's end mark at once", task_id)

    async def _settle(self, task_id: str) -> None:
        """Drops an earlier order kept for the task: the one just written replaces it."""
        # A read each time, not skipped on what this replica knows: another one may have
        # kept an order for the task, which a round would write over this one.
        try:
            await self._kept.drop(pending_marks.c.task_id == task_id)
        except (SQLAlchemyError, OSError) as error:
            log.warning("dropping the kept end mark of task %s failed: %s", task_id, error)
