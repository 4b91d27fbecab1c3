"""farm.tasks.v1.TaskService handlers: validate the request, act on the tasks, answer."""

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_core.errors import InvalidArgument, NotFound, PermissionDenied
from farm_core.identity import current_identity
from farm_core.paging import Cursor, decode_cursor, page_size, split_page
from farm_core.scopes import Scope
from farm_core.timestamps import to_timestamp
from farm_scheduler import metrics
from farm_scheduler.publisher import TaskPublisher
from farm_scheduler.settings import SchedulerSettings
from farm_scheduler.store import TaskRecord, TaskStore
from farm_scheduler.validation import check_label_key, validate_spec
from farm_scheduler.watch import TaskWatch

# Task ids are uuid4 hex; checking the form keeps other text out of NATS subjects.
TASK_ID_PATTERN = re.compile(r"[0-9a-f]{32}")


def task_event(record: TaskRecord) -> tasks_pb2.TaskEvent:
    """The event that reports `record`'s current state."""
    state = record.state
    moment = state.finish_time or state.start_time or record.create_time
    return tasks_pb2.TaskEvent(
        task_id=record.id, status=state.status, time=to_timestamp(moment), task=record.to_proto()
    )


def parse_label_filters(filters: Sequence[str]) -> list[tuple[str, str]]:
    """The (key, value) pairs of ListTasks' `label` filters, each written "key=value"."""
    pairs = []
    for written in filters:
        key, equals, value = written.partition("=")
        if not equals:
            raise InvalidArgument("label", f"must be written key=value, got {written!r}")
        check_label_key("label", key)
        pairs.append((key, value))
    return pairs


def _task_id(task_id: str) -> str:
    """The requested task id; one not in the form of ours names no task."""
    if not task_id:
        raise InvalidArgument("id", "is required")
    if not TASK_ID_PATTERN.fullmatch(task_id):
        raise NotFound("task", task_id[:64])
    return task_id


class TaskApi(tasks_pb2_grpc.TaskServiceServicer):
    """farm.tasks.v1.TaskService: the caller's tenant's tasks."""

    def __init__(
        self,
        settings: SchedulerSettings,
        store: TaskStore,
        publisher: TaskPublisher,
        watch: TaskWatch,
    ) -> None:
        self._settings = settings
        self._store = store
        self._publisher = publisher
        self._watch = watch

    async def CreateTask(
        self, request: tasks_pb2.CreateTaskRequest, context: Any
    ) -> tasks_pb2.Task:
        record = await self._create(request.spec)
        return record.to_proto()

    async def RunTask(self, request: tasks_pb2.RunTaskRequest, context: Any) -> tasks_pb2.Task:
        created = await self._create(request.spec)
        tenant, task_id = created.tenant, created.id
        wait_seconds = created.spec.timeout_ms / 1000 + self._settings.run_queue_wait_seconds
        deadline = asyncio.get_running_loop().time() + wait_seconds
        latest = created
        updates = self._watch.follow(task_id, lambda: self._store.get(tenant, task_id), deadline)
        async with contextlib.aclosing(updates):
            async for latest in updates:  # noqa: B007 - the last one read is the answer
                pass
        return latest.to_proto()

    async def GetTask(self, request: tasks_pb2.GetTaskRequest, context: Any) -> tasks_pb2.Task:
        record = await self._store.get(current_identity().tenant, _task_id(request.id))
        return record.to_proto()

    async def ListTasks(
        self, request: tasks_pb2.ListTasksRequest, context: Any
    ) -> tasks_pb2.ListTasksResponse:
        if request.status not in tasks_pb2.TaskStatus.values():
            raise InvalidArgument("status", f"has no value {request.status}")
        labels = parse_label_filters(request.label)
        size = page_size(request.page_size, "pageSize")
        after = decode_cursor(request.page_token, "pageToken")
        records = await self._store.page(
            current_identity().tenant,
            status=request.status,
            labels=labels,
            size=size + 1,
            after=after,
        )
        page, next_token = split_page(records, size, lambda row: Cursor(row.create_time, row.id))
        return tasks_pb2.ListTasksResponse(
            tasks=[record.to_proto() for record in page], next_page_token=next_token
        )

    async def CancelTask(
        self, request: tasks_pb2.CancelTaskRequest, context: Any
    ) -> tasks_pb2.Task:
        tenant, task_id = current_identity().tenant, _task_id(request.id)
        change = await self._store.cancel(tenant, task_id)
        if change is None:
            return (await self._store.get(tenant, task_id)).to_proto()
        metrics.record_change(change)
        await self._watch.announce(task_id)
        await self._publisher.announce_cancel(task_id)
        return change.after.to_proto()

    async def WatchTask(
        self, request: tasks_pb2.WatchTaskRequest, context: Any
    ) -> AsyncIterator[tasks_pb2.TaskEvent]:
        tenant, task_id = current_identity().tenant, _task_id(request.id)
        updates = self._watch.follow(task_id, lambda: self._store.get(tenant, task_id))
        async with contextlib.aclosing(updates):
            async for record in updates:
                yield task_event(record)

    async def _create(self, spec: tasks_pb2.TaskSpec) -> TaskRecord:
        """Validates `spec`, stores the task and publishes it (or leaves it to the republisher)."""
        identity = current_identity()
        if spec.HasField("script") and not identity.has_scope(Scope.SCRIPT):
            raise PermissionDenied(f"a task with a script needs the scope {Scope.SCRIPT.value!r}")
        checked = validate_spec(
            spec,
            max_attempts_cap=self._settings.max_attempts_cap,
            default_timeout_ms=self._settings.default_timeout_ms,
        )
        record, created = await self._store.create(identity.tenant, checked)
        if created:
            metrics.record_created(record)
            await self._publisher.publish(record)
        return record
