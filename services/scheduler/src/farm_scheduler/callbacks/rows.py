"""Callbacks in SQL: which are due, claiming one for a delivery, its attempts, a requeue's reset.

A task's callback is pending from its creation (when its spec has a callback URL)
until a delivery succeeds or is given up; it is due once the task is final and
its `callback_due` has come. A sender claims a due callback by pushing
`callback_due` ahead (a compare-and-set), so that no other scheduler delivers it
meanwhile; a sender that dies mid-delivery leaves it due again when that passes.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from farm.tasks.v1 import tasks_pb2
from farm_scheduler import lifecycle
from farm_scheduler.callbacks.attempts import CallbackAttempt
from farm_scheduler.models import CallbackAttemptRow, TaskRow

tasks = cast(Table, TaskRow.__table__)
callback_attempts = cast(Table, CallbackAttemptRow.__table__)
_FINAL_STATUS_NAMES = tuple(
    sorted(tasks_pb2.TaskStatus.Name(status) for status in lifecycle.FINAL_STATUSES)
)


def _is_due(now: dt.datetime) -> Any:
    """The condition of a callback that may be delivered at `now`."""
    return (
        tasks.c.callback_pending == true(),
        tasks.c.status.in_(_FINAL_STATUS_NAMES),
        or_(tasks.c.callback_due.is_(None), tasks.c.callback_due <= now),
    )


async def due_callbacks(connection: AsyncConnection, now: dt.datetime, limit: int) -> list[str]:
    """Ids of up to `limit` final tasks whose callback is due at `now`, longest due first."""
    query = (
        select(tasks.c.id)
        .where(*_is_due(now))
        .order_by(tasks.c.callback_due.is_not(None), tasks.c.callback_due, tasks.c.id)
        .limit(limit)
    )
    return list((await connection.execute(query)).scalars())


async def claim_callback(
    connection: AsyncConnection, task_id: str, now: dt.datetime, until: dt.datetime
) -> bool:
    """Takes the task's due callback until `until`; False if it is not due (or another took it)."""
    claimed = await connection.execute(
        update(tasks).where(tasks.c.id == task_id, *_is_due(now)).values(callback_due=until)
    )
    return bool(claimed.rowcount == 1)


async def record_attempt(
    connection: AsyncConnection,
    task_id: str,
    requeues: int,
    attempt: CallbackAttempt,
    next_time: dt.datetime | None,
) -> None:
    """Stores a delivery attempt; the callback stays pending until `next_time`, or ends (None).

    `requeues` is the task's requeue count when it was claimed: a requeue since then
    has made the callback pending for the task's next end, which this does not undo.
    """
    await connection.execute(
        insert(callback_attempts).values(
            task_id=task_id,
            attempt=attempt.number,
            time=attempt.time,
            http_status=attempt.http_status,
            error=attempt.error,
        )
    )
    await connection.execute(
        update(tasks)
        .where(tasks.c.id == task_id, tasks.c.requeues == requeues)
        .values(callback_pending=next_time is not None, callback_due=next_time)
    )


_ATTEMPTS_OF_TASK = (
    select(callback_attempts)
    .where(callback_attempts.c.task_id == bindparam("task_id"))
    .order_by(callback_attempts.c.attempt)
)


async def callbacks_of_task(
    connection: AsyncConnection, task_id: str
) -> tuple[CallbackAttempt, ...]:
    """The callback delivery attempts of the task `task_id`, by number."""
    rows = await connection.execute(_ATTEMPTS_OF_TASK, {"task_id": task_id})
    return tuple(CallbackAttempt(row.attempt, row.time, row.http_status, row.error) for row in rows)


async def callback_histories(
    connection: AsyncConnection, task_ids: Sequence[str]
) -> dict[str, tuple[CallbackAttempt, ...]]:
    """The callback delivery attempts of each of `task_ids` that has any, by number."""
    if not task_ids:
        return {}
    query = (
        select(callback_attempts)
        .where(callback_attempts.c.task_id.in_(task_ids))
        .order_by(callback_attempts.c.task_id, callback_attempts.c.attempt)
    )
    histories: defaultdict[str, list[CallbackAttempt]] = defaultdict(list)
    for row in await connection.execute(query):
        histories[row.task_id].append(
            CallbackAttempt(row.attempt, row.time, row.http_status, row.error)
        )
    return {task_id: tuple(attempts) for task_id, attempts in histories.items()}


def callback_reset(requeued: bool, callback_url: str) -> dict[str, Any]:
    """The `tasks` columns a change sets: a requeued task's callback is delivered again."""
    if not requeued:
        return {}
    return {"callback_pending": bool(callback_url), "callback_due": None}
