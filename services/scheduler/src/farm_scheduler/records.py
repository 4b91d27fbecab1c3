"""A task as the scheduler holds it, its API view, and its mapping to and from SQL rows."""

import dataclasses
import datetime as dt
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.internal.containers import RepeatedCompositeFieldContainer
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import RowMapping

from farm.tasks.v1 import tasks_pb2
from farm_core.queue import ANY_REGION
from farm_core.quotas import TenantQuotas
from farm_core.timestamps import from_timestamp, to_timestamp
from farm_core.trace_context import trace_id_of, traceparent
from farm_scheduler.attempts import Attempt
from farm_scheduler.callbacks.attempts import CallbackAttempt, callback_status
from farm_scheduler.lifecycle import TaskState
from farm_scheduler.quotas import running_limit
from farm_scheduler.result_cache import cache_key


@dataclass(frozen=True)
class TaskRecord:
    """A task as stored: who owns it, what it asks for, its state and its bookkeeping."""

    id: str
    tenant: str
    spec: tasks_pb2.TaskSpec
    create_time: dt.datetime
    state: TaskState
    published: bool = False
    """Whether JetStream has stored the WorkItem of the task's latest queuing."""
    queue_sequence: int | None = None
    """The FARM_TASKS sequence of the WorkItem last marked published (None: not known)."""
    dead_letter_pending: bool = False
    """Whether its DeadLetter still has to be published to FARM_DEAD."""
    revision: int = 0
    tenant_max_running: int = 0
    """The tenant's maxRunningTasks when the task was accepted, for the agents; 0 unlimited."""
    tenant_max_artifact_bytes: int = 0
    """The tenant's maxArtifactBytes when the task was accepted, for storage (in the task's
    grant); 0 unlimited."""
    trace_parent: str = ""
    """The W3C traceparent of the call that created it ("" untraced): its trace's root here."""
    cached: bool = False
    """Whether it was answered from the result cache (it never ran)."""
    cache_source: str = ""
    """With `cached`: the task whose result it shares (artifacts and all)."""
    cache_key: str = ""
    """Its spec's result_cache.cache_key, worked out once when it is created."""
    callback_pending: bool = False
    """Whether its callback is still to be delivered (once it is final)."""
    callback_attempts: tuple[CallbackAttempt, ...] = ()
    """The delivery attempts of its callback, oldest first."""
    routed_region: str = ""
    """Where a region rule queued it: its preferred region, or `any` once it fell back; ""
    when no rule did."""
    route_pending: bool = False
    """Whether it waits in its preferred region and may still be moved to any region."""

    @property
    def queue_region(self) -> str:
        """The region whose subject its WorkItem is published on ("" for any)."""
        routed = "" if self.routed_region == ANY_REGION else self.routed_region
        return self.spec.region or routed

    @property
    def deadline(self) -> dt.datetime | None:
        """The spec's deadline, if it has one."""
        return from_timestamp(self.spec.deadline) if self.spec.HasField("deadline") else None

    @property
    def publish_id(self) -> str:
        """The Nats-Msg-Id of its WorkItem: the task id, then a new one for each requeue.

        JetStream drops a second message with the same id within its duplicate
        window, so a requeued task, and one moved to any region, needs an id of its own.
        """
        requeues = self.state.requeues
        queuing = self.id if requeues == 0 else f"{self.id}.r{requeues}"
        # Moved from its preferred region: a message of its own on tasks.any.*.
        return f"{queuing}.any" if self.routed_region == ANY_REGION else queuing

    @property
    def dead_letter_id(self) -> str:
        """The Nats-Msg-Id of its DeadLetter, the same for every publish of one failure."""
        requeues, attempts = self.state.requeues, self.state.attempts
        if requeues == 0:
            return f"{self.id}.dead.{attempts}"
        return f"{self.id}.r{requeues}.dead.{attempts}"

    def change_time(self) -> dt.datetime:
        """When the task last changed state: its end, its latest queuing, or its start."""
        state = self.state
        if state.finish_time is not None:
            return state.finish_time
        if state.status == tasks_pb2.TASK_STATUS_QUEUED:
            # Queued when created, after a failed attempt, or by a requeue: the latest.
            latest_failure = state.history[-1].finish_time if state.history else None
            moments = [self.create_time, state.requeue_time, latest_failure]
            return max(moment for moment in moments if moment is not None)
        return state.start_time or self.create_time

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
            start_time=_timestamp(state.start_time),
            finish_time=_timestamp(state.finish_time),
            retry_time=_timestamp(state.retry_time),
            error=_error(state.error_code, state.error_message, state.error_retryable),
            attempt_history=[attempt_proto(attempt) for attempt in state.history],
            trace_id=trace_id_of(self.trace_parent),
            cached=self.cached,
            callback_status=callback_status(
                self.spec.callback_url, self.callback_pending, self.callback_attempts
            ),
            callback_attempts=[attempt.to_proto() for attempt in self.callback_attempts],
            routed_region=self.queue_region or ANY_REGION,
        )
        if state.status == tasks_pb2.TASK_STATUS_RUNNING:
            # A note of an earlier attempt, or of one that has ended, says nothing now.
            task.status_message = state.status_message
        if state.status == tasks_pb2.TASK_STATUS_SUCCEEDED:
            task.result.ParseFromString(state.result)
        return task


def add_tasks(
    target: RepeatedCompositeFieldContainer[tasks_pb2.Task], records: Sequence[TaskRecord]
) -> None:
    """Appends each record's to_proto() to `target`, in order.

    The new tasks of a batch usually differ only in their ids: each is a copy of
    the first one's Task (one C-level copy) with its own id, not a Task built anew.
    """
    built: dict[tuple[object, ...], tasks_pb2.Task] = {}
    for record in records:
        # Everything to_proto reads but the id; id(): the records hold their specs.
        alike = (
            record.tenant,
            record.state,
            id(record.spec),
            record.create_time,
            record.trace_parent,
            record.cached,
            record.callback_pending,
            record.callback_attempts,
            record.routed_region,
        )
        task = target.add()
        first = built.get(alike)
        if first is None:
            task.CopyFrom(record.to_proto())
            built[alike] = task
        else:
            task.CopyFrom(first)
            task.id = record.id


def attempt_proto(attempt: Attempt) -> tasks_pb2.AttemptRecord:
    """The API's view of one attempt."""
    return tasks_pb2.AttemptRecord(
        attempt=attempt.number,
        agent_id=attempt.agent_id,
        start_time=_timestamp(attempt.start_time),
        finish_time=_timestamp(attempt.finish_time),
        error=_error(attempt.error_code, attempt.error_message, attempt.retryable),
    )


def _timestamp(moment: dt.datetime | None) -> Timestamp | None:
    return None if moment is None else to_timestamp(moment)


def _error(code: str, message: str, retryable: bool) -> tasks_pb2.TaskError | None:
    """The error of a task or attempt that has an error code; None for one without."""
    return tasks_pb2.TaskError(code=code, message=message, retryable=retryable) if code else None


_STATE_COLUMNS = tuple(
    field.name for field in dataclasses.fields(TaskState) if field.name not in {"status", "history"}
)
"""The fields of TaskState that `tasks` columns of the same name hold as they are."""
_ATTEMPT_COLUMNS = tuple(
    field.name for field in dataclasses.fields(Attempt) if field.name != "number"
)
"""The fields of Attempt that `task_attempts` columns of the same name hold as they are."""


def record_from_row(
    values: RowMapping,
    history: tuple[Attempt, ...],
    callback_attempts: tuple[CallbackAttempt, ...] = (),
) -> TaskRecord:
    """The task in a `tasks` row, with its attempts and its callback's."""
    return TaskRecord(
        id=values["id"],
        tenant=values["tenant"],
        spec=tasks_pb2.TaskSpec.FromString(values["spec"]),
        create_time=values["create_time"],
        published=values["published"],
        queue_sequence=values["queue_sequence"],
        dead_letter_pending=values["dead_letter_pending"],
        revision=values["revision"],
        tenant_max_running=values["tenant_max_running"] or 0,
        tenant_max_artifact_bytes=values["tenant_max_artifact_bytes"] or 0,
        trace_parent=values["trace_parent"],
        cached=values["cached"],
        cache_source=values["cache_source"],
        cache_key=values["cache_key"],
        callback_pending=values["callback_pending"],
        callback_attempts=callback_attempts,
        routed_region=values["routed_region"],
        route_pending=values["route_pending"],
        state=TaskState(
            status=tasks_pb2.TaskStatus.Value(values["status"]),
            history=history,
            **{name: values[name] for name in _STATE_COLUMNS},
        ),
    )


def attempt_from_row(values: RowMapping) -> Attempt:
    """The attempt in a `task_attempts` row."""
    return Attempt(number=values["attempt"], **{name: values[name] for name in _ATTEMPT_COLUMNS})


def state_values(state: TaskState) -> dict[str, Any]:
    """The `tasks` columns that hold `state` (all but its history)."""
    return {
        "status": tasks_pb2.TaskStatus.Name(state.status),
        **{name: getattr(state, name) for name in _STATE_COLUMNS},
    }


def spec_values(spec: tasks_pb2.TaskSpec) -> dict[str, Any]:
    """The `tasks` columns of a new task that come from its spec alone."""
    return {
        "spec": spec.SerializeToString(deterministic=True),
        "priority": tasks_pb2.Priority.Name(spec.priority),
        "region": spec.region,
        "labels": dict(spec.labels),
        "idempotency_key": spec.idempotency_key,
        "deadline": from_timestamp(spec.deadline) if spec.HasField("deadline") else None,
    }


def row_values(
    record: TaskRecord,
    spec_columns: dict[str, Any] | None = None,
    state_columns: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every `tasks` column of a new task.

    `spec_columns` and `state_columns`, if given, are its spec_values and
    state_values, worked out once for the tasks of a batch that share them.
    """
    return {
        "id": record.id,
        "tenant": record.tenant,
        **(spec_values(record.spec) if spec_columns is None else spec_columns),
        "create_time": record.create_time,
        "published": record.published,
        "dead_letter_pending": record.dead_letter_pending,
        "revision": record.revision,
        "tenant_max_running": record.tenant_max_running,
        "tenant_max_artifact_bytes": record.tenant_max_artifact_bytes,
        "trace_parent": record.trace_parent,
        # A cached task's result is another's: it serves no later task, so that the
        # cache's age of a result is always that of the run which made it.
        "cache_key": "" if record.cached else record.cache_key,
        "cached": record.cached,
        "cache_source": record.cache_source,
        "callback_pending": record.callback_pending,
        "routed_region": record.routed_region,
        "route_pending": record.route_pending,
        **(state_values(record.state) if state_columns is None else state_columns),
    }


def attempt_values(task_id: str, attempt: Attempt) -> dict[str, Any]:
    """The `task_attempts` row of one attempt."""
    return {
        "task_id": task_id,
        "attempt": attempt.number,
        **{name: getattr(attempt, name) for name in _ATTEMPT_COLUMNS},
    }


def new_task_id() -> str:
    """A fresh task id: 32 hex digits."""
    return uuid.uuid4().hex


def new_task_ids(count: int) -> list[str]:
    """`count` fresh task ids, 32 random hex digits each, from one read of the OS's randomness.

    A uuid4 per task (a system call and a UUID object each) was a third of a
    batch's rows in a profile; these ids have the same form (api.TASK_ID_PATTERN).
    """
    digits = os.urandom(16 * count).hex()
    return [digits[start : start + 32] for start in range(0, 32 * count, 32)]


NEW_STATE = TaskState(status=tasks_pb2.TASK_STATUS_QUEUED)
"""The state of every new task (frozen, so shared: a batch's rows convert it once)."""


def new_record(
    tenant: str,
    spec: tasks_pb2.TaskSpec,
    quotas: TenantQuotas | None,
    now: dt.datetime,
    trace_parent: str | None = None,
    routed_region: str = "",
    spec_cache_key: str | None = None,
    task_id: str | None = None,
) -> TaskRecord:
    """A new QUEUED, unpublished task of `tenant`, parented by `trace_parent`.

    None stands for the current trace context's (the creating call's). `routed_region`
    is the queue a region rule chose (routing.router): a preferred region, from which
    the task may still fall back, or `any`. `spec_cache_key`, if given, is the spec's
    cache_key, worked out already; `task_id`, if given, its id (new_task_ids).
    """
    return TaskRecord(
        id=new_task_id() if task_id is None else task_id,
        tenant=tenant,
        spec=spec,
        create_time=now,
        state=NEW_STATE,
        tenant_max_running=running_limit(quotas),
        tenant_max_artifact_bytes=quotas.max_artifact_bytes if quotas is not None else 0,
        trace_parent=traceparent() if trace_parent is None else trace_parent,
        cache_key=cache_key(spec) if spec_cache_key is None else spec_cache_key,
        callback_pending=bool(spec.callback_url),
        routed_region=routed_region,
        route_pending=routed_region not in ("", ANY_REGION),
    )
