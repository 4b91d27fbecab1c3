"""Which tasks JetStream holds: the task rows' publish marks, and the rows still to publish.

A task (or its dead letter) is marked published only once JetStream has
acknowledged it; the republisher and the dead-letter copier read what is unmarked.
"""

import datetime as dt
from typing import Any

from sqlalchemy import Select, false, or_, select, true, update

from farm_core.db import Database
from farm_scheduler.records import TaskRecord
from farm_scheduler.task_rows import (
    MARK_PUBLISHED,
    STATUS_FAILED,
    STATUS_QUEUED,
    read_tasks,
    tasks,
)


class PublishMarks(Database):
    """The publish marks of the tasks table, and its reads of whole task records."""

    async def unpublished(self, limit: int, queued_before: dt.datetime) -> list[TaskRecord]:
        """Up to `limit` QUEUED tasks JetStream has not stored yet, oldest first.

        Only tasks created (and requeued, if they were) before `queued_before`: a
        younger one may be in the hands of its first publish, which marks it
        published only once JetStream has acknowledged it.
        """
        query = (
            select(tasks)
            .where(
                tasks.c.published == false(),
                tasks.c.status == STATUS_QUEUED,
                tasks.c.create_time < queued_before,
                or_(tasks.c.requeue_time.is_(None), tasks.c.requeue_time < queued_before),
            )
            .order_by(tasks.c.create_time, tasks.c.id)
            .limit(limit)
        )
        return await self._all(query)

    async def pending_dead_letters(self, limit: int, dead_before: dt.datetime) -> list[TaskRecord]:
        """Up to `limit` FAILED tasks whose DeadLetter is not in FARM_DEAD yet, oldest first.

        Only tasks given up before `dead_before`: a younger one's dead letter may be
        in the hands of its first publish, which marks it done only once JetStream
        has acknowledged it.
        """
        query = (
            select(tasks)
            .where(
                tasks.c.dead_letter_pending == true(),
                tasks.c.status == STATUS_FAILED,
                tasks.c.dead_time < dead_before,
            )
            .order_by(tasks.c.dead_time, tasks.c.id)
            .limit(limit)
        )
        return await self._all(query)

    async def mark_published(self, *published: tuple[TaskRecord, int]) -> None:
        """Notes, in one transaction, that JetStream has stored these WorkItems.

        Each is a task's record, for the queuing it stands for (its requeues), and
        the FARM_TASKS sequence of its WorkItem.
        """
        if not published:
            return
        rows = [
            {"task_id": record.id, "queuing": record.state.requeues, "sequence": sequence}
            for record, sequence in published
        ]
        async with self.engine.begin() as connection:
            await connection.execute(MARK_PUBLISHED, rows)

    async def mark_dead_letter_published(self, task_id: str, requeues: int) -> None:
        """Notes that FARM_DEAD has stored the DeadLetter of the task's queuing `requeues`."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(tasks)
                .where(tasks.c.id == task_id, tasks.c.requeues == requeues)
                .values(dead_letter_pending=False)
            )

    async def _all(self, query: Select[Any]) -> list[TaskRecord]:
        async with self.engine.connect() as connection:
            return await read_tasks(connection, query)
