"""Tasks in SQL: creation with idempotency keys, tenant-scoped reads, pages, state changes."""

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Row, Select, Table, false, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from farm.queue.v1 import queue_pb2
from farm.tasks.v1 import tasks_pb2
from farm_core.db import Database, newest_first, utcnow
from farm_core.errors import NotFound, Unavailable
from farm_core.paging import Cursor
from farm_core.timestamps import to_timestamp
from farm_scheduler import lifecycle
from farm_scheduler.lifecycle import Status, TaskState
from farm_scheduler.models import HAS_IDEMPOTENCY_KEY, TaskRow

MIGRATIONS = "farm_scheduler:migrations"
VERSION_TABLE = "alembic_version_scheduler"
# A state change is a compare-and-set on (status, attempts); a few retries absorb
# a concurrent change (an agent's event racing a user's cancel).
MAX_TRANSITION_TRIES = 5

tasks = cast(Table, TaskRow.__table__)
_STATUS_QUEUED = tasks_pb2.TaskStatus.Name(tasks_pb2.TASK_STATUS_QUEUED)


@dataclass(frozen=True)
class TaskRecord:
    """A task as stored: who owns it, what it asks for, and its state."""

    id: str
    tenant: str
    spec: tasks_pb2.TaskSpec
    create_time: dt.datetime
    state: TaskState
    published: bool = False

    def to_proto(self) -> tasks_pb2.Task:
        """The API's view of the task."""
        state = self.state
        task = tasks_pb2.Task(
            id=self.id,
            tenant=self.tenant,
            status=state.status,
            spec=self.spec,
            attempts=state.attempts,
            agent_id=state.agent_id,
            create_time=to_timestamp(self.create_time),
        )
        if state.start_time is not None:
            task.start_time.CopyFrom(to_timestamp(state.start_time))
        if state.finish_time is not None:
            task.finish_time.CopyFrom(to_timestamp(state.finish_time))
        if state.status == tasks_pb2.TASK_STATUS_SUCCEEDED:
            task.result.ParseFromString(state.result)
        if state.error_code:
            task.error.code = state.error_code
            task.error.message = state.error_message
        return task


@dataclass(frozen=True)
class TaskChange:
    """A task before and after a change of its state."""

    before: TaskRecord
    after: TaskRecord


def new_task_id() -> str:
    """A fresh task id: 32 hex digits."""
    return uuid.uuid4().hex


class TaskStore(Database):
    """The tasks table of one database."""

    def __init__(self, database_url: str) -> None:
        super().__init__(database_url, MIGRATIONS, VERSION_TABLE)

    async def create(self, tenant: str, spec: tasks_pb2.TaskSpec) -> tuple[TaskRecord, bool]:
        """Stores a new QUEUED task, unpublished; the task and whether it is new.

        A tenant's second task with the same idempotency key is not stored: the first
        one is returned instead.
        """
        key = spec.idempotency_key
        if key:
            earlier = await self._find_by_key(tenant, key)
            if earlier is not None:
                return earlier, False
        record = TaskRecord(
            id=new_task_id(),
            tenant=tenant,
            spec=spec,
            create_time=utcnow(),
            state=TaskState(status=tasks_pb2.TASK_STATUS_QUEUED),
        )
        try:
            async with self.engine.begin() as connection:
                await connection.execute(insert(tasks).values(_row_values(record)))
        except IntegrityError:
            # A concurrent create with the same key won the race: its task stands.
            earlier = await self._find_by_key(tenant, key) if key else None
            if earlier is None:
                raise
            return earlier, False
        return record, True

    async def get(self, tenant: str, task_id: str) -> TaskRecord:
        """The tenant's task `task_id`; NotFound if absent or another tenant's."""
        async with self.engine.connect() as connection:
            record = await _get(connection, task_id, tenant)
        if record is None:
            raise NotFound("task", task_id)
        return record

    async def page(
        self,
        tenant: str,
        *,
        status: Status,
        labels: Sequence[tuple[str, str]],
        size: int,
        after: Cursor | None,
    ) -> list[TaskRecord]:
        """Up to `size` of the tenant's tasks, newest first, after `after`.

        `status` UNSPECIFIED lists every state; a task must carry all of `labels`.
        """
        query = select(tasks).where(tasks.c.tenant == tenant)
        if status != tasks_pb2.TASK_STATUS_UNSPECIFIED:
            query = query.where(tasks.c.status == tasks_pb2.TaskStatus.Name(status))
        for key, value in labels:
            query = query.where(tasks.c.labels[key].as_string() == value)
        return await self._all(newest_first(query, tasks.c.create_time, tasks.c.id, after, size))

    async def unpublished(self, limit: int) -> list[TaskRecord]:
        """Up to `limit` QUEUED tasks JetStream has not stored yet, oldest first."""
        query = (
            select(tasks)
            .where(tasks.c.published == false(), tasks.c.status == _STATUS_QUEUED)
            .order_by(tasks.c.create_time, tasks.c.id)
            .limit(limit)
        )
        return await self._all(query)

    async def mark_published(self, task_id: str) -> None:
        """Notes that JetStream has stored the task's WorkItem."""
        async with self.engine.begin() as connection:
            await connection.execute(
                update(tasks).where(tasks.c.id == task_id).values(published=True)
            )

    async def apply_event(
        self, event: queue_pb2.AgentEvent, received: dt.datetime
    ) -> TaskChange | None:
        """Applies an agent's event; the change, or None for no change or an unknown task."""
        return await self._transition(
            event.task_id, None, lambda state: lifecycle.apply_event(state, event, received)
        )

    async def cancel(self, tenant: str, task_id: str) -> TaskChange | None:
        """Cancels the tenant's task; None if it had ended already. NotFound if there is none."""
        now = utcnow()
        return await self._transition(task_id, tenant, lambda state: lifecycle.cancel(state, now))

    async def _transition(
        self,
        task_id: str,
        tenant: str | None,
        change: Callable[[TaskState], TaskState | None],
    ) -> TaskChange | None:
        for _ in range(MAX_TRANSITION_TRIES):
            async with self.engine.begin() as connection:
                before = await _get(connection, task_id, tenant, for_update=True)
                if before is None:
                    if tenant is not None:
                        raise NotFound("task", task_id)
                    return None
                state = change(before.state)
                if state is None:
                    return None
                swapped = await connection.execute(
                    update(tasks)
                    .where(
                        tasks.c.id == task_id,
                        tasks.c.status == tasks_pb2.TaskStatus.Name(before.state.status),
                        tasks.c.attempts == before.state.attempts,
                    )
                    .values(_state_values(state))
                )
                if swapped.rowcount == 1:
                    return TaskChange(before, dataclasses.replace(before, state=state))
        raise Unavailable(f"task {task_id!r} kept changing while being updated; try again")

    async def _find_by_key(self, tenant: str, key: str) -> TaskRecord | None:
        query = select(tasks).where(
            tasks.c.tenant == tenant, tasks.c.idempotency_key == key, HAS_IDEMPOTENCY_KEY
        )
        found = await self._all(query)
        return found[0] if found else None

    async def _all(self, query: Select[Any]) -> list[TaskRecord]:
        async with self.engine.connect() as connection:
            rows = (await connection.execute(query)).all()
        return [_record(row) for row in rows]


async def _get(
    connection: AsyncConnection, task_id: str, tenant: str | None, *, for_update: bool = False
) -> TaskRecord | None:
    query = select(tasks).where(tasks.c.id == task_id)
    if tenant is not None:
        query = query.where(tasks.c.tenant == tenant)
    if for_update:
        query = query.with_for_update()
    row = (await connection.execute(query)).first()
    return None if row is None else _record(row)


def _record(row: Row[Any]) -> TaskRecord:
    values = row._mapping
    spec = tasks_pb2.TaskSpec()
    spec.ParseFromString(values["spec"])
    return TaskRecord(
        id=values["id"],
        tenant=values["tenant"],
        spec=spec,
        create_time=values["create_time"],
        published=values["published"],
        state=TaskState(
            status=tasks_pb2.TaskStatus.Value(values["status"]),
            attempts=values["attempts"],
            agent_id=values["agent_id"],
            start_time=values["start_time"],
            finish_time=values["finish_time"],
            result=values["result"],
            error_code=values["error_code"],
            error_message=values["error_message"],
        ),
    )


def _state_values(state: TaskState) -> dict[str, Any]:
    return {
        "status": tasks_pb2.TaskStatus.Name(state.status),
        "attempts": state.attempts,
        "agent_id": state.agent_id,
        "start_time": state.start_time,
        "finish_time": state.finish_time,
        "result": state.result,
        "error_code": state.error_code,
        "error_message": state.error_message,
    }


def _row_values(record: TaskRecord) -> dict[str, Any]:
    spec = record.spec
    return {
        "id": record.id,
        "tenant": record.tenant,
        "spec": spec.SerializeToString(deterministic=True),
        "priority": tasks_pb2.Priority.Name(spec.priority),
        "region": spec.region,
        "labels": dict(spec.labels),
        "idempotency_key": spec.idempotency_key,
        "create_time": record.create_time,
        "published": record.published,
        **_state_values(record.state),
    }
