"""Task rows in SQL with their attempts: a task read whole, the attempts a change wrote."""

import dataclasses
import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Dialect, Select, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from farm.tasks.v1 import tasks_pb2
from farm_scheduler.attempts import Attempt
from farm_scheduler.callbacks.rows import callback_histories, callbacks_of_task
from farm_scheduler.models import HAS_CACHE_KEY, HAS_IDEMPOTENCY_KEY, AttemptRow, TaskRow
from farm_scheduler.records import TaskRecord, attempt_from_row, attempt_values, record_from_row

tasks = cast(Table, TaskRow.__table__)
task_attempts = cast(Table, AttemptRow.__table__)
STATUS_QUEUED = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_QUEUED)
STATUS_FAILED = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_FAILED)
STATUS_SUCCEEDED = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_SUCCEEDED)

# Statements of every create, built once: SQLAlchemy then finds their compiled form
# by the statement's memoised cache key instead of building and keying them per call.
INSERT_TASKS = insert(tasks)
"""Inserts `tasks` rows (row_values), one or many."""
_QUEUED_COUNT = select(func.count()).where(
    tasks.c.tenant == bindparam("tenant"), tasks.c.status == STATUS_QUEUED
)
_LATEST_CACHED_RESULT = (
    select(tasks.c.id, tasks.c.result)
    .where(
        tasks.c.tenant == bindparam("tenant"),
        tasks.c.cache_key == bindparam("key"),
        HAS_CACHE_KEY,
        tasks.c.finish_time >= bindparam("since"),
        tasks.c.status == STATUS_SUCCEEDED,
    )
    .order_by(tasks.c.finish_time.desc())
    .limit(1)
)
MARK_PUBLISHED = (
    update(tasks)
    .where(
        tasks.c.id == bindparam("task_id"),
        tasks.c.requeues == bindparam("queuing"),
    )
    .values(published=True, queue_sequence=bindparam("sequence"))
)
"""Marks task `task_id` published, if still at its queuing `queuing` (requeues), with the
FARM_TASKS `sequence` of its WorkItem."""
# Statements of every event applied (store._transition) and every task read, built once.
_TASK = select(tasks).where(tasks.c.id == bindparam("task_id"))
_TENANT_TASK = _TASK.where(tasks.c.tenant == bindparam("tenant"))
_TASK_FOR_UPDATE = _TASK.with_for_update()
_TENANT_TASK_FOR_UPDATE = _TENANT_TASK.with_for_update()
_ATTEMPTS_OF_TASK = (
    select(task_attempts)
    .where(task_attempts.c.task_id == bindparam("task_id"))
    .order_by(task_attempts.c.attempt)
)
_INSERT_ATTEMPT = insert(task_attempts)
# The SET clause comes from the parameters' keys (attempt_values), so where-names differ.
_UPDATE_ATTEMPT = update(task_attempts).where(
    task_attempts.c.task_id == bindparam("where_task_id"),
    task_attempts.c.attempt == bindparam("where_attempt"),
)
SWAP_TASK = update(tasks).where(
    tasks.c.id == bindparam("where_id"), tasks.c.revision == bindparam("where_revision")
)
"""Sets the columns its parameters name on task `where_id`, if still at `where_revision`."""


_DriverInsert = tuple[str, tuple[str, ...], list[tuple[int, Callable[[Any], Any]]]]
_driver_inserts: dict[tuple[str, str, tuple[str, ...]], _DriverInsert] = {}


def _driver_insert(dialect: Dialect, keys: tuple[str, ...]) -> _DriverInsert:
    """The INSERT of columns `keys` in the driver's own SQL, and how its parameters go.

    That is the SQL (positional: qmark for SQLite, $n for asyncpg), the columns
    in its parameters' order, and each column's bind conversion by its index.
    """
    # By driver too: each has its own paramstyle.
    known = _driver_inserts.get((dialect.name, dialect.driver, keys))
    if known is None:
        compiled = INSERT_TASKS.compile(dialect=dialect, column_keys=list(keys))
        columns = tuple(compiled.positiontup or ())
        assert sorted(columns) == sorted(keys), "a positional paramstyle, one per column"
        conversions: list[tuple[int, Callable[[Any], Any]]] = []
        for index, name in enumerate(columns):
            convert = tasks.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                conversions.append((index, convert))
        known = (str(compiled), columns, conversions)
        _driver_inserts[(dialect.name, dialect.driver, keys)] = known
    return known


async def insert_rows(connection: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Inserts new `tasks` rows (row_values, all with the same columns) in one executemany.

    The rows go to the database driver as tuples: SQLAlchemy's handling of each
    row's parameters (half of a batch's INSERT in a profile) is skipped, and each
    column's conversion (datetimes, JSON, booleans; the column type's own bind
    processor for the dialect) runs once per distinct value object of the batch,
    which its tasks mostly share (their create time, spec and state columns).
    """
    if not rows:
        return
    sql, columns, conversions = _driver_insert(connection.dialect, tuple(rows[0]))
    converted: list[dict[int, tuple[Any, Any]]] = [{} for _ in conversions]
    parameters = []
    for row in rows:
        values = [row[name] for name in columns]
        for (index, convert), seen in zip(conversions, converted, strict=True):
            value = values[index]
            # By identity: equal values of other objects are converted again.
            done = seen.get(id(value))
            if done is None or done[0] is not value:
                done = seen[id(value)] = (value, convert(value))
            values[index] = done[1]
        parameters.append(tuple(values))
    await connection.exec_driver_sql(sql, parameters)


async def read_tasks(connection: AsyncConnection, query: Select[Any]) -> list[TaskRecord]:
    """The tasks `query` selects from the tasks table, each with its attempts."""
    rows = (await connection.execute(query)).all()
    task_ids = [row.id for row in rows]
    histories = await _histories(connection, task_ids)
    records = [record_from_row(row._mapping, histories.get(row.id, ())) for row in rows]
    # Only a task with a callback URL has callback attempts (callbacks.rows).
    callbacks = await callback_histories(
        connection, [record.id for record in records if record.spec.callback_url]
    )
    return [
        dataclasses.replace(record, callback_attempts=callbacks[record.id])
        if record.id in callbacks
        else record
        for record in records
    ]


async def read_task(
    connection: AsyncConnection, task_id: str, tenant: str | None, *, for_update: bool = False
) -> TaskRecord | None:
    """The task `task_id` (of `tenant`, unless None) with its attempts; None if there is none.

    With `for_update`, its row stays locked until the transaction ends.
    """
    if tenant is None:
        query, where = (_TASK_FOR_UPDATE if for_update else _TASK), {"task_id": task_id}
    else:
        query = _TENANT_TASK_FOR_UPDATE if for_update else _TENANT_TASK
        where = {"task_id": task_id, "tenant": tenant}
    row = (await connection.execute(query, where)).first()
    if row is None:
        return None
    attempts = await connection.execute(_ATTEMPTS_OF_TASK, {"task_id": task_id})
    history = tuple(attempt_from_row(attempt._mapping) for attempt in attempts)
    record = record_from_row(row._mapping, history)
    if not record.spec.callback_url:
        # Only a task with a callback URL has callback attempts (callbacks.rows).
        return record
    return dataclasses.replace(
        record, callback_attempts=await callbacks_of_task(connection, task_id)
    )


async def queued_count(connection: AsyncConnection, tenant: str) -> int:
    """How many of `tenant`'s tasks are QUEUED."""
    return int((await connection.execute(_QUEUED_COUNT, {"tenant": tenant})).scalar_one())


async def latest_cached_result(
    connection: AsyncConnection, tenant: str, key: str, since: dt.datetime
) -> tuple[str, bytes] | None:
    """The id and serialized result of the tenant's latest success of cache key `key` since `since`.

    None if there is none; tasks answered from the cache have no key, so never count.
    """
    values = {"tenant": tenant, "key": key, "since": since}
    row = (await connection.execute(_LATEST_CACHED_RESULT, values)).first()
    return None if row is None else (str(row.id), bytes(row.result))


async def save_history(
    connection: AsyncConnection,
    task_id: str,
    before: Sequence[Attempt],
    after: Sequence[Attempt],
) -> None:
    """Writes the attempts that the change added or altered."""
    known = {attempt.number: attempt for attempt in before}
    for attempt in after:
        earlier = known.get(attempt.number)
        if earlier == attempt:
            continue
        values = attempt_values(task_id, attempt)
        if earlier is None:
            await connection.execute(_INSERT_ATTEMPT, values)
        else:
            where = {"where_task_id": task_id, "where_attempt": attempt.number}
            await connection.execute(_UPDATE_ATTEMPT, {**values, **where})


async def _histories(
    connection: AsyncConnection, task_ids: Sequence[str]
) -> dict[str, tuple[Attempt, ...]]:
    """The attempts of each of `task_ids` that has any, by number."""
    if not task_ids:
        return {}
    query = (
        select(task_attempts)
        .where(task_attempts.c.task_id.in_(task_ids))
        .order_by(task_attempts.c.task_id, task_attempts.c.attempt)
    )
    histories: defaultdict[str, list[Attempt]] = defaultdict(list)
    for row in await connection.execute(query):
        histories[row.task_id].append(attempt_from_row(row._mapping))
    return {task_id: tuple(attempts) for task_id, attempts in histories.items()}


async def release_expired_keys(
    connection: AsyncConnection, tenant: str, keys: Collection[str], window_start: dt.datetime
) -> None:
    """Frees the tenant's idempotency `keys` held by tasks created by `window_start`.

    Their key column is emptied (their specs keep the key), so new tasks can take them.
    """
    await connection.execute(
        update(tasks)
        .where(
            tasks.c.tenant == tenant,
            tasks.c.idempotency_key.in_(keys),
            HAS_IDEMPOTENCY_KEY,
            tasks.c.create_time <= window_start,
        )
        .values(idempotency_key="")
    )
