"""The retention sweep's SQL: which ended tasks and closed sessions may go, and their deletion.

A task may go once it ended, and was created, before the cutoff, unless a task
that is kept shares its result (a cached task names it as `cache_source`, or a
cached task of its tenant from before migration 0016 ended after it), or its dead
letter is still to be published. A result the cache may still answer with is never
past the cutoff: the cache reaches back no further than the retention less an hour
(retention.cache_reach). A cached task owns no artifacts (they
are its source's), so deleting it deletes none.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import ColumnElement, Table, delete, exists, false, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncConnection

from farm.sessions.v1 import sessions_pb2
from farm.tasks.v1 import tasks_pb2
from farm_scheduler.models import CallbackAttemptRow
from farm_scheduler.sessions.store import sessions
from farm_scheduler.task_rows import task_attempts, tasks

callback_attempts = cast(Table, CallbackAttemptRow.__table__)
# '' written into the statement, not bound: SQLite uses a partial index only for a
# query whose WHERE repeats the index's condition, constants and all.
_EMPTY: ColumnElement[str] = literal_column("''")
ENDED_STATUSES = tuple(
    tasks_pb2.TaskStatus.Name(status)
    for status in (
        tasks_pb2.TASK_STATUS_SUCCEEDED,
        tasks_pb2.TASK_STATUS_FAILED,
        tasks_pb2.TASK_STATUS_CANCELLED,
    )
)
SESSION_CLOSED = sessions_pb2.SessionState.Name(sessions_pb2.SESSION_STATE_CLOSED)


@dataclass(frozen=True)
class Expired:
    """A task or session past retention: its id, tenant, and whether it owns artifacts."""

    id: str
    tenant: str
    owns_artifacts: bool


def _ended_before(cutoff: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    # The end time is the agent's (its event's time): created before the cutoff too, so
    # that an agent whose clock is behind (a board without a real-time clock dates its
    # report 1970) has no task deleted sooner than a retention after the scheduler took it.
    return (
        tasks.c.status.in_(ENDED_STATUSES),
        tasks.c.finish_time < cutoff,
        tasks.c.create_time < cutoff,
    )


async def expired_tasks(
    connection: AsyncConnection,
    cutoff: dt.datetime,
    limit: int,
    skip: Sequence[str] = (),
) -> list[Expired]:
    """Up to `limit` tasks that may go, but those in `skip`."""
    referrer = tasks.alias("referrer")
    unsourced = tasks.alias("unsourced")
    query = (
        select(tasks.c.id, tasks.c.tenant, tasks.c.cached)
        .where(
            *_ended_before(cutoff),
            tasks.c.dead_letter_pending == false(),
            ~exists().where(
                referrer.c.cache_source != _EMPTY, referrer.c.cache_source == tasks.c.id
            ),
            ~exists().where(
                unsourced.c.tenant == tasks.c.tenant,
                unsourced.c.cached == true(),
                unsourced.c.cache_source == _EMPTY,
                unsourced.c.finish_time >= tasks.c.finish_time,
            ),
            *([tasks.c.id.not_in(skip)] if skip else []),
        )
        # No ORDER BY: over three statuses it would sort the whole backlog for each batch;
        # the index gives each status's oldest first anyway.
        .limit(limit)
    )
    rows = (await connection.execute(query)).all()
    return [Expired(row.id, row.tenant, owns_artifacts=not row.cached) for row in rows]


async def delete_tasks(
    connection: AsyncConnection, task_ids: Sequence[str], cutoff: dt.datetime
) -> int:
    """Deletes those of `task_ids` still ended before `cutoff`, with their attempts; how many.

    A task requeued meanwhile (RequeueDeadLetter) is no longer ended, so it stays.
    """
    still_expired = select(tasks.c.id).where(tasks.c.id.in_(task_ids), *_ended_before(cutoff))
    await connection.execute(
        delete(task_attempts).where(task_attempts.c.task_id.in_(still_expired))
    )
    await connection.execute(
        delete(callback_attempts).where(callback_attempts.c.task_id.in_(still_expired))
    )
    result = await connection.execute(
        delete(tasks).where(tasks.c.id.in_(task_ids), *_ended_before(cutoff))
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _closed_before(cutoff: dt.datetime) -> tuple[ColumnElement[bool], ...]:
    # As for tasks: the close time is the agent's, the create time the scheduler's.
    return (
        sessions.c.state == SESSION_CLOSED,
        sessions.c.close_time < cutoff,
        sessions.c.create_time < cutoff,
    )


async def expired_sessions(
    connection: AsyncConnection, cutoff: dt.datetime, limit: int, skip: Sequence[str] = ()
) -> list[Expired]:
    """Up to `limit` sessions closed before `cutoff`, oldest close first, but those in `skip`."""
    query = (
        select(sessions.c.id, sessions.c.tenant)
        .where(*_closed_before(cutoff), *([sessions.c.id.not_in(skip)] if skip else []))
        .order_by(sessions.c.close_time)
        .limit(limit)
    )
    rows = (await connection.execute(query)).all()
    return [Expired(row.id, row.tenant, owns_artifacts=True) for row in rows]


async def delete_sessions(
    connection: AsyncConnection, session_ids: Sequence[str], cutoff: dt.datetime
) -> int:
    """Deletes those of `session_ids` still closed before `cutoff`; how many."""
    result = await connection.execute(
        delete(sessions).where(sessions.c.id.in_(session_ids), *_closed_before(cutoff))
    )
    return int(getattr(result, "rowcount", 0) or 0)
