"""farm.tasks.v1.TaskService handlers: validate the request, act on the tasks, answer."""

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator, Sequence
from typing import Any

from farm.tasks.v1 import tasks_pb2, tasks_pb2_grpc
from farm_core import item_refusals, task_ends
from farm_core.db import utcnow
from farm_core.egress.address_policy import AddressPolicy
from farm_core.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from farm_core.identity import current_identity
from farm_core.item_refusals import REFUSED_ITEMS_HEADER, ItemProblem
from farm_core.key_streams import KeyStreams, until_ended
from farm_core.paging import Cursor, read_page
from farm_core.queue import TASK_STREAM
from farm_core.scopes import Scope
from farm_core.timestamps import from_timestamp, to_timestamp
from farm_core.trace_context import mark
from farm_scheduler.batch_cancels import cancel_all, cancel_response, check_cancel_batch
from farm_scheduler.batches import Accepted, check_batch_size, check_items, item_error
from farm_scheduler.callbacks.secrets import WebhookSecrets
from farm_scheduler.callbacks.sender import ALLOW_SETTING, refusal_of_literal
from farm_scheduler.cancel_rows import CancelledRows
from farm_scheduler.changes import ChangeReporter
from farm_scheduler.group_commit import CreateGroups, commit
from farm_scheduler.lifecycle import is_final
from farm_scheduler.publisher import TaskPublisher
from farm_scheduler.records import TaskRecord, add_tasks
from farm_scheduler.settings import SchedulerSettings
from farm_scheduler.store import TaskChange, TaskStore
from farm_scheduler.validation import check_label_key, runs_script, validate_spec
from farm_scheduler.watch import TaskWatch

# Task ids are uuid4 hex; checking the form keeps other text out of NATS subjects.
TASK_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
# RunTask answers this long before the caller's own deadline, so the caller gets the task.
RUN_ANSWER_MARGIN_SECONDS = 1.0


def task_event(record: TaskRecord) -> tasks_pb2.TaskEvent:
    """The event that reports `record`'s current state."""
    return tasks_pb2.TaskEvent(
        task_id=record.id,
        status=record.state.status,
        time=to_timestamp(record.change_time()),
        task=record.to_proto(),
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


def checked_task_id(task_id: str, field: str = "id") -> str:
    """The requested task id; one not in the form of ours names no task."""
    if not task_id:
        raise InvalidArgument(field, "is required")
    if not TASK_ID_PATTERN.fullmatch(task_id):
        raise NotFound("task", task_id[:64])
    return task_id


def run_wait_seconds(
    spec: tasks_pb2.TaskSpec,
    queue_wait_seconds: float,
    deadline_grace_seconds: float,
    now: dt.datetime,
) -> float:
    """How long RunTask waits for its task to end.

    Every attempt's time limit plus `queue_wait_seconds` (for the queue and the
    pauses between attempts); with a deadline, at most until the deadline plus
    `deadline_grace_seconds`.
    """
    attempts = max(spec.max_attempts, 1)
    wait_seconds = attempts * spec.timeout_ms / 1000 + queue_wait_seconds
    if spec.HasField("deadline"):
        until_deadline = (from_timestamp(spec.deadline) - now).total_seconds()
        wait_seconds = min(wait_seconds, max(until_deadline + deadline_grace_seconds, 0.0))
    return wait_seconds


def mark_cancelled(record: TaskRecord) -> None:
    """A `task.cancel` span in the cancelled task's trace, linked to the cancelling call.

    A task that was still queued leaves no other span of its end; the call's own
    trace is the caller's, not the task's.
    """
    mark(
        "task.cancel",
        parent=record.trace_parent,
        attributes={"farm.task_id": record.id},
        link_current=True,
    )


def edge_refusals(context: Any) -> dict[int, ItemProblem]:
    """The batch items the edge's check refused alone (farm_core.item_refusals), by index."""
    for key, value in context.invocation_metadata() or ():
        if key == REFUSED_ITEMS_HEADER and isinstance(value, str):
            return item_refusals.decode(value)
    return {}


class TaskApi(tasks_pb2_grpc.TaskServiceServicer):
    """farm.tasks.v1.TaskService: the caller's tenant's tasks."""

    def __init__(
        self,
        settings: SchedulerSettings,
        store: TaskStore,
        publisher: TaskPublisher,
        watch: TaskWatch,
        changes: ChangeReporter,
        callback_policy: AddressPolicy | None = None,
        key_streams: KeyStreams | None = None,
    ) -> None:
        self._settings = settings
        # WatchTask's streams and RunTask's waits, each ended when its key is revoked or expires.
        self._key_streams = key_streams or KeyStreams()
        self._callback_policy = callback_policy or AddressPolicy()
        self._secrets = WebhookSecrets(store.engine)
        self._store = store
        self._publisher = publisher
        self._watch = watch
        self._changes = changes
        self._groups = CreateGroups(store, publisher, settings.create_group_max)

    async def CreateTask(
        self, request: tasks_pb2.CreateTaskRequest, context: Any
    ) -> tasks_pb2.Task:
        record = await self._create(request.spec)
        return record.to_proto()

    async def CreateTasks(
        self, request: tasks_pb2.CreateTasksRequest, context: Any
    ) -> tasks_pb2.CreateTasksResponse:
        check_batch_size(len(request.requests))
        identity = current_identity()
        checked, refused = check_items(request.requests, self._checked)
        # Items whose unknown JSON fields the transcoder dropped, named by the edge.
        for index, (field, problem) in edge_refusals(context).items():
            if index < len(request.requests):
                checked.pop(index, None)
                refused[index] = InvalidArgument(field, problem)
        errors = {index: item_error(index, error) for index, error in refused.items()}
        outcomes = await commit(
            self._store, self._publisher, identity.tenant, list(checked.values()), identity.quotas
        )
        accepted: dict[int, TaskRecord] = {}
        for index, outcome in zip(checked, outcomes, strict=True):
            if isinstance(outcome, Accepted):
                accepted[index] = outcome.record
            else:
                errors[index] = item_error(index, outcome)
        response = tasks_pb2.CreateTasksResponse(errors=[errors[index] for index in sorted(errors)])
        add_tasks(response.tasks, [accepted[index] for index in sorted(accepted)])
        return response

    async def RunTask(self, request: tasks_pb2.RunTaskRequest, context: Any) -> tasks_pb2.Task:
        created = await self._create(request.spec, wait_for_it=True)
        if is_final(created.state.status):
            # Answered from the cache (or an idempotent repeat of an ended task).
            return created.to_proto()
        tenant, task_id = created.tenant, created.id
        self._check_queue_took(created)
        settings = self._settings
        wait_seconds = run_wait_seconds(
            created.spec,
            settings.run_queue_wait_seconds,
            settings.run_deadline_grace_seconds,
            utcnow(),
        )
        remaining = context.time_remaining()
        if remaining is not None:
            wait_seconds = min(wait_seconds, max(remaining - RUN_ANSWER_MARGIN_SECONDS, 0.0))
        deadline = asyncio.get_running_loop().time() + wait_seconds
        latest = created
        updates = self._watch.follow(task_id, lambda: self._store.get(tenant, task_id), deadline)
        # As WatchTask's stream: the wait ends, UNAUTHENTICATED, once its key stops working.
        with self._key_streams.held(current_identity()) as key_ended:
            async with contextlib.aclosing(updates):
                async for latest in until_ended(updates, key_ended):  # noqa: B007 - the answer
                    pass
        return latest.to_proto()

    def _check_queue_reachable(self) -> None:
        """Raises Unavailable, before anything is stored, when NATS is unreachable.

        CreateTask keeps such a task QUEUED and publishes it once NATS is back; RunTask's
        caller waits for the result, which no agent can reach meanwhile, so it would only
        wait out its timeout and leave a task behind that runs later unwatched.
        """
        if not self._publisher.connected():
            raise Unavailable(
                f"NATS at {self._settings.nats_url} is unreachable: the task queue "
                f"({TASK_STREAM}) cannot take the task, so RunTask does not wait for it; "
                "nothing was stored. Try again once NATS is back, or use CreateTask, which "
                "keeps the task QUEUED until then"
            )

    def _check_queue_took(self, created: TaskRecord) -> None:
        """Raises Unavailable when JetStream did not take the task RunTask stored.

        `created` says so as its create committed it (group_commit.commit): no read.
        A stalled nats-server (stopped, not gone) keeps the connection, so the check
        before storing passes and the publish waits out its timeout. The task stays
        QUEUED, as CreateTask's would: NATS may hold the message already, and the
        republisher publishes it (deduplicated by its id) once NATS answers. RunTask
        does not wait for it, for the reason _check_queue_reachable gives, and names it.
        """
        if created.published or created.state.status != tasks_pb2.TASK_STATUS_QUEUED:
            return
        raise Unavailable(
            f"NATS at {self._settings.nats_url} did not take the task within "
            f"{self._settings.publish_timeout_seconds:g} s: the task queue ({TASK_STREAM}) "
            f"cannot take the task, so RunTask does not wait for it; task {created.id} "
            "stays QUEUED and is published once NATS answers, as CreateTask's task is. "
            f"Follow it with GetTask or WatchTask, or CancelTask it"
        )

    async def GetTask(self, request: tasks_pb2.GetTaskRequest, context: Any) -> tasks_pb2.Task:
        record = await self._store.get(current_identity().tenant, checked_task_id(request.id))
        return record.to_proto()

    async def ListTasks(
        self, request: tasks_pb2.ListTasksRequest, context: Any
    ) -> tasks_pb2.ListTasksResponse:
        if request.status not in tasks_pb2.TaskStatus.values():
            raise InvalidArgument("status", f"has no value {request.status}")
        labels = parse_label_filters(request.label)
        tenant = current_identity().tenant
        page, next_token = await read_page(
            request,
            lambda limit, after: self._store.page(
                tenant, status=request.status, labels=labels, size=limit, after=after
            ),
            lambda record: Cursor(record.create_time, record.id),
        )
        return tasks_pb2.ListTasksResponse(
            tasks=[record.to_proto() for record in page], next_page_token=next_token
        )

    async def CancelTask(
        self, request: tasks_pb2.CancelTaskRequest, context: Any
    ) -> tasks_pb2.Task:
        tenant, task_id = current_identity().tenant, checked_task_id(request.id)
        change = await self._cancel(tenant, task_id)
        if change is None:
            return (await self._store.get(tenant, task_id)).to_proto()
        return change.after.to_proto()

    async def CancelTasks(
        self, request: tasks_pb2.CancelTasksRequest, context: Any
    ) -> tasks_pb2.CancelTasksResponse:
        check_cancel_batch(len(request.ids))
        tenant = current_identity().tenant
        outcomes = await cancel_all(
            request.ids, checked_task_id, lambda task_ids: self._cancel_many(tenant, task_ids)
        )
        return cancel_response(outcomes)

    async def _cancel_many(self, tenant: str, task_ids: Sequence[str]) -> CancelledRows:
        """`_cancel` of each of the tenant's `task_ids` (distinct), each step for all at once."""
        done = await self._store.cancel_many(tenant, task_ids)
        changes = list(done.changes.values())
        for change in changes:
            mark_cancelled(change.after)
            await self._changes.report(change)
        await self._publisher.end_marks.mark_many(list(done.changes), task_ends.CANCELLED)
        await self._publisher.queue_messages.ended_many([change.before for change in changes])
        return done

    async def _cancel(self, tenant: str, task_id: str) -> TaskChange | None:
        """Cancels the tenant's task and tells the watchers and the agents; None if it had ended."""
        change = await self._store.cancel(tenant, task_id)
        if change is None:
            return None
        mark_cancelled(change.after)
        await self._changes.report(change)
        await self._publisher.end_marks.mark(task_id, task_ends.CANCELLED)
        await self._publisher.queue_messages.ended(change.before)
        return change

    async def WatchTask(
        self, request: tasks_pb2.WatchTaskRequest, context: Any
    ) -> AsyncIterator[tasks_pb2.TaskEvent]:
        identity = current_identity()
        tenant, task_id = identity.tenant, checked_task_id(request.id)
        updates = self._watch.follow(task_id, lambda: self._store.get(tenant, task_id))
        # The stream ends, UNAUTHENTICATED, once its key is revoked or expires.
        with self._key_streams.held(identity) as key_ended:
            async with contextlib.aclosing(updates):
                async for record in until_ended(updates, key_ended):
                    yield task_event(record)

    async def GetWebhookSecret(
        self, request: tasks_pb2.GetWebhookSecretRequest, context: Any
    ) -> tasks_pb2.WebhookSecret:
        secret = await self._secrets.get(current_identity().tenant, utcnow())
        return secret.to_proto()

    async def RotateWebhookSecret(
        self, request: tasks_pb2.RotateWebhookSecretRequest, context: Any
    ) -> tasks_pb2.WebhookSecret:
        overlap = dt.timedelta(seconds=self._settings.webhook_secret_overlap_seconds)
        secret = await self._secrets.rotate(current_identity().tenant, utcnow(), overlap)
        return secret.to_proto()

    def _checked(self, spec: tasks_pb2.TaskSpec) -> tasks_pb2.TaskSpec:
        """`spec` validated, with its defaults; PermissionDenied for a script without the scope."""
        if runs_script(spec) and not current_identity().has_scope(Scope.SCRIPT):
            raise PermissionDenied(
                f"a task with a script or an evaluate step needs the scope {Scope.SCRIPT.value!r}"
            )
        checked = validate_spec(
            spec,
            max_attempts_cap=self._settings.max_attempts_cap,
            default_timeout_ms=self._settings.default_timeout_ms,
        )
        # Most tasks have no callback: parsing "" as a URL and an address costs a raised error.
        if checked.callback_url:
            refusal = refusal_of_literal(checked.callback_url, self._callback_policy)
            if refusal is not None:
                raise InvalidArgument(
                    "callbackUrl", f"is refused: {refusal.describe(ALLOW_SETTING)}"
                )
        return checked

    async def _create(self, spec: tasks_pb2.TaskSpec, *, wait_for_it: bool = False) -> TaskRecord:
        """Validates `spec`, stores the task and publishes it (or leaves it to the republisher).

        Concurrent creates of the tenant are written and published in groups. With
        `wait_for_it` (RunTask) the queue must be reachable: see _check_queue_reachable.
        """
        identity = current_identity()
        checked = self._checked(spec)
        if wait_for_it:
            self._check_queue_reachable()
        accepted = await self._groups.create(identity.tenant, checked, identity.quotas)
        return accepted.record
