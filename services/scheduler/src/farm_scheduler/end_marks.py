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
from sqlalchemy import Table, and_, delete, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.queue.v1 import queue_pb2
from farm_core import task_ends
from farm_core.db import utcnow
from farm_core.queue import cancel_subject
from farm_scheduler.models import PendingEndMarkRow

log = logging.getLogger(__name__)

RETRY_BATCH = 100
"""Kept orders retried in one round at most, least lately tried first."""

pending_marks = cast(Table, PendingEndMarkRow.__table__)


class EndMarks:
    """Writes and withdraws the marks of ended tasks; keeps the ones NATS refused in SQL."""

    def __init__(self, nc: Client, ended_tasks: KeyValue, engine: AsyncEngine) -> None:
        self._nc = nc
        self._ended_tasks = ended_tasks
        self._engine = engine

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
        """Tries up to RETRY_BATCH kept orders again, least lately tried first; how many went.

        A round stops at the first that fails again (NATS is still away), which goes
        to the back.
        """
        if not self._nc.is_connected:
            return 0
        query = select(pending_marks).order_by(pending_marks.c.try_time).limit(RETRY_BATCH)
        async with self._engine.connect() as connection:
            kept = (await connection.execute(query)).mappings().all()
        done = 0
        for row in kept:
            task_id, reason = row["task_id"], row["reason"]
            # A newer order kept for the task meanwhile changed the row's try_time: it stays.
            this_one = and_(
                pending_marks.c.task_id == task_id, pending_marks.c.try_time == row["try_time"]
            )
            try:
                if reason is None:
                    await self._ended_tasks.delete(task_id)
                else:
                    await self._put(task_id, reason)
            except (nats.errors.Error, TimeoutError) as error:
                log.warning("marking task %s ended failed again: %s", task_id, error)
                async with self._engine.begin() as connection:
                    await connection.execute(
                        update(pending_marks).where(this_one).values(try_time=utcnow())
                    )
                break
            async with self._engine.begin() as connection:
                await connection.execute(delete(pending_marks).where(this_one))
            done += 1
        if done:
            log.info("marked %d ended task(s) held back while NATS was unreachable", done)
        return done

    async def _put(self, task_id: str, reason: str) -> None:
        await self._ended_tasks.put(task_id, task_ends.mark(reason))
        await self._nc.publish(
            cancel_subject(task_id), queue_pb2.CancelNotice(task_id=task_id).SerializeToString()
        )

    async def _keep(self, task_id: str, reason: str | None) -> None:
        """Keeps the order for retry_pending, replacing an earlier one for the task."""
        row = {"task_id": task_id, "reason": reason, "try_time": utcnow()}
        try:
            async with self._engine.begin() as connection:
                await connection.execute(
                    delete(pending_marks).where(pending_marks.c.task_id == task_id)
                )
                await connection.execute(insert(pending_marks).values(row))
        except IntegrityError:
            log.warning("another replica kept an order for task %s's end mark at once", task_id)
        except (SQLAlchemyError, OSError) as error:
            log.error("keeping the end mark of task %s for a retry failed: %s", task_id, error)

    async def _settle(self, task_id: str) -> None:
        """Drops an earlier order kept for the task: the one just written replaces it."""
        its = pending_marks.c.task_id == task_id
        try:
            # Mostly there is none: a read takes no write lock (SQLite's is the database's).
            async with self._engine.connect() as connection:
                if await connection.scalar(select(pending_marks.c.task_id).where(its)) is None:
                    return
            async with self._engine.begin() as connection:
                await connection.execute(delete(pending_marks).where(its))
        except (SQLAlchemyError, OSError) as error:
            log.warning("dropping the kept end mark of task %s failed: %s", task_id, error)
