"""Tasks by state from SQL: the unfinished ones now, the finished ones within a window."""

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.task_rows import STATUS_FAILED, tasks

_QUEUED = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_QUEUED)
_RUNNING = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_RUNNING)
_SUCCEEDED = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_SUCCEEDED)
_CANCELLED = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_CANCELLED)


@dataclass(frozen=True)
class TaskCounts:
    """Every tenant's tasks: queued and running now, ended since `since`, dead letters."""

    since: dt.datetime
    queued: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    # FAILED tasks now (not requeued): the dead letters.
    dead_letters: int = 0


async def count_tasks(engine: AsyncEngine, since: dt.datetime) -> TaskCounts:
    """The counts now; each is one indexed count by status (and finish time)."""
    now_by_status = (
        select(tasks.c.status, func.count())
        .where(tasks.c.status.in_([_QUEUED, _RUNNING, STATUS_FAILED]))
        .group_by(tasks.c.status)
    )
    ended = (
        select(tasks.c.status, func.count())
        .where(
            and_(
                tasks.c.status.in_([_SUCCEEDED, STATUS_FAILED, _CANCELLED]),
                tasks.c.finish_time >= since,
            )
        )
        .group_by(tasks.c.status)
    )
    async with engine.connect() as connection:
        now = {str(status): int(count) for status, count in await connection.execute(now_by_status)}
        recent = {str(status): int(count) for status, count in await connection.execute(ended)}
    return TaskCounts(
        since=since,
        queued=now.get(_QUEUED, 0),
        running=now.get(_RUNNING, 0),
        succeeded=recent.get(_SUCCEEDED, 0),
        failed=recent.get(STATUS_FAILED, 0),
        cancelled=recent.get(_CANCELLED, 0),
        dead_letters=now.get(STATUS_FAILED, 0),
    )
